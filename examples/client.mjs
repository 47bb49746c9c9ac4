// pmacache from Node.js (18 or later: the built-in fetch; Debian: nodejs), no packages.
//
//   PMACACHE_URL=http://127.0.0.1:8080 PMACACHE_KEY=... node examples/client.mjs
//
// Fetches the orders, revalidates them with their ETag (304: nothing to download), then asks
// for a sync and follows it as Server-Sent Events until the new data is there.

const url = (process.env.PMACACHE_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const key = process.env.PMACACHE_KEY;
if (!key) {
  console.error("set PMACACHE_KEY to an API key");
  process.exit(2);
}
const headers = { "X-API-Key": key }; // a header, never a query parameter

// The whole table as { body, etag }; body is null when our copy (etag) is current.
async function fetchData(etag) {
  const res = await fetch(`${url}/fetch-data`, {
    headers: etag ? { ...headers, "If-None-Match": etag } : headers,
  });
  if (res.status === 304) return { body: null, etag };
  if (!res.ok) throw new Error(`/fetch-data: HTTP ${res.status} ${await res.text()}`);
  return { body: await res.json(), etag: res.headers.get("etag") };
}

// { event, id, data } for each Server-Sent Event of a streamed response.
async function* sseEvents(res) {
  let buf = "";
  let event = "message", id = null, data = [];
  for await (const text of res.body.pipeThrough(new TextDecoderStream())) {
    buf += text;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === "") { // a blank line ends an event
        if (data.length) yield { event, id, data: JSON.parse(data.join("\n")) };
        event = "message";
        data = [];
      } else if (!line.startsWith(":")) { // ": ping" is a heartbeat
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "id") id = value;
        else if (field === "data") data.push(value);
      }
    }
  }
}

let { body, etag } = await fetchData();
let orders = body.data;
console.log(`count: ${orders.length}`);

({ body, etag } = await fetchData(etag));
console.log(`revalidate: ${body === null ? "304 not modified" : "changed"}`);

// Start a sync and follow it. payload=none keeps the events small (count, etag,
// last_updated); the new rows are then fetched once, compressed.
const res = await fetch(`${url}/fetch-data?stream=true&refresh=true&payload=none`, { headers });
if (!res.ok) throw new Error(`stream: HTTP ${res.status} ${await res.text()}`);
let failed = false;
for await (const { event, id, data } of sseEvents(res)) {
  if (event === "done") break;
  if (event === "progress") {
    console.log(`progress: ${data.phase} rows=${data.rows ?? "-"} bytes=${data.bytes ?? "-"}`);
  } else if (event === "updated") {
    console.log(`updated: ${data.payload.count} rows, etag ${id}`);
  } else if (event === "failed") {
    console.error(`sync failed: ${data.error} (the cache is unchanged)`);
    failed = true;
  }
}

({ body, etag } = await fetchData(etag));
if (body !== null) orders = body.data;
console.log(`count: ${orders.length}`);
process.exitCode = failed ? 1 : 0;
