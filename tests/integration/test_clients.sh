#!/bin/bash
# The clients in examples/ against a real instance: curl.sh, client.py (Debian's python3 and
# python3-requests) and client.mjs (Node's built-in fetch), each checked against the real row
# count; status.html in headless Chromium through chromedriver (W3C WebDriver over curl),
# served from another origin so that CORS is what lets it in; and the CORS headers of every
# path (preflight, X-Accel-Redirect body, 304, gzip, errors, SSE) for an allowed origin,
# another origin and no origin.
. "$(dirname "$0")/../lib.sh"
command -v jq >/dev/null || { notok "jq is installed"; finish; }
DIR=$TMPBASE/clients
inst_up clients "sync_bin = $TMPBASE/clients-sync
min_rows_ratio = 0
sse_heartbeat_s = 1
limit_bad_keys_per_min = 1
limit_bad_keys_burst = 5
limit_refresh_per_min = 1000000
limit_refresh_burst = 100000
limit_streams_per_client = 10000"
# The sync that /refresh starts: the real pmacache-sync importing $DIR/next.csv.
make_csv_sync; cp "$DIR/csv-sync" "$TMPBASE/clients-sync"
# The page's own origin: a second nginx on another port. Allowed in cors_origins.
PAGE_PORT=$(free_port)
ORIGIN=http://127.0.0.1:$PAGE_PORT
OTHER=http://127.0.0.1:$(free_port)
echo "cors_origins = $ORIGIN, https://ops.example.com" >> "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null || { notok "restart with cors_origins"; finish; }

A=300 B=180
"$GEN" -n $A csv > "$DIR/a.csv"
"$GEN" -n $B -s 7 csv > "$DIR/b.csv"
echo "$DIR/b.csv" > "$DIR/next.csv"
echo 1 > "$DIR/sleep"
reset_a() { "$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>>"$DIR/sync.log"; }

# --- CORS -------------------------------------------------------------------------------
# hdrs FILE NAME: the value of header NAME (all of them, one per line) in a curl -D file.
hdrs() { awk -v n="$(tr 'A-Z' 'a-z' <<<"$2")" -F': ' 'tolower($1) == n { sub(/\r$/, "", $2); print $2 }' "$1"; }
# cors_ok NAME FILE: the headers an allowed origin gets.
cors_ok() {
	is "$1: Access-Control-Allow-Origin" "$(hdrs "$2" Access-Control-Allow-Origin)" "$ORIGIN"
	check "$1: Vary: Origin" grep -qx Origin <(hdrs "$2" Vary)
	is "$1: Access-Control-Expose-Headers" "$(hdrs "$2" Access-Control-Expose-Headers)" "ETag, Last-Modified, Retry-After"
}
# cors_none NAME FILE: no CORS header at all.
cors_none() {
	is "$1: no CORS headers" "$(grep -ci '^Access-Control-' "$2")" 0
	is "$1: no Vary: Origin" "$(hdrs "$2" Vary | grep -c Origin)" 0
}
H() { curl -s -D "$DIR/h" -o "$DIR/b" "$@"; }

# Before any data: the 503 error.
H -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" "$URL/fetch-data"
is "503 before data" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 503
cors_ok "503 JSON error" "$DIR/h"
check "503 body names the problem" grep -q 'No cached data' "$DIR/b"
reset_a
is "import a.csv through the sync's --csv" "$(api "$URL/fetch-data" | jq '.data | length')" $A

# Preflight: 204 from nginx, no key, no data, the three request headers allowed.
for p in /fetch-data /status /refresh /health; do
	H -X OPTIONS -H "Origin: $ORIGIN" -H 'Access-Control-Request-Method: GET' \
		-H 'Access-Control-Request-Headers: x-api-key,last-event-id,if-none-match' "$URL$p"
	is "preflight $p: 204" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 204
	is "preflight $p: allows the origin" "$(hdrs "$DIR/h" Access-Control-Allow-Origin)" "$ORIGIN"
	is "preflight $p: no body" "$(stat -c %s "$DIR/b")" 0
done
is "preflight: allowed headers" "$(hdrs "$DIR/h" Access-Control-Allow-Headers)" "X-API-Key, Last-Event-ID, If-None-Match"
check "preflight: allowed methods" grep -q 'GET, HEAD, POST, OPTIONS' <(hdrs "$DIR/h" Access-Control-Allow-Methods)
check "preflight: Vary: Origin" grep -qx Origin <(hdrs "$DIR/h" Vary)
H -X OPTIONS -H "Origin: https://OPS.example.com" -H 'Access-Control-Request-Method: GET' "$URL/status"
is "preflight: the second configured origin" "$(hdrs "$DIR/h" Access-Control-Allow-Origin)" "https://OPS.example.com"
H -X OPTIONS -H "Origin: $OTHER" -H 'Access-Control-Request-Method: GET' "$URL/fetch-data"
check "preflight from another origin: not 204" test "$(head -n1 "$DIR/h" | cut -d' ' -f2)" != 204
cors_none "preflight from another origin" "$DIR/h"
H -X OPTIONS "$URL/fetch-data"
check "OPTIONS without Origin: not 204" test "$(head -n1 "$DIR/h" | cut -d' ' -f2)" != 204
cors_none "OPTIONS without Origin" "$DIR/h"

# The full body through X-Accel-Redirect, plain and gzip, and its 304.
H -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" "$URL/fetch-data"
cors_ok "fetch-data body" "$DIR/h"
check "fetch-data body is the cache" cmp -s "$DIR/b" "$CACHE/data_cache.json"
etag=$(hdrs "$DIR/h" ETag)
H -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" -H 'Accept-Encoding: gzip' "$URL/fetch-data"
is "gzip: Content-Encoding" "$(hdrs "$DIR/h" Content-Encoding)" gzip
cors_ok "fetch-data gzip" "$DIR/h"
H -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" -H "If-None-Match: $etag" "$URL/fetch-data"
is "If-None-Match: 304" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 304
cors_ok "304" "$DIR/h"
for o in "$OTHER" ""; do
	n=${o:+another origin}; n=${n:-no Origin}
	oh=(); [ -n "$o" ] && oh=(-H "Origin: $o")
	H "${oh[@]}" -H "X-API-Key: $KEY" "$URL/fetch-data"
	check "fetch-data, $n: the data" cmp -s "$DIR/b" "$CACHE/data_cache.json"
	cors_none "fetch-data, $n" "$DIR/h"
	H "${oh[@]}" -H "X-API-Key: $KEY" -H "If-None-Match: $etag" "$URL/fetch-data"
	cors_none "304, $n" "$DIR/h"
	H "${oh[@]}" "$URL/status"
	cors_none "401, $n" "$DIR/h"
	H "${oh[@]}" -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none"
	cors_none "SSE, $n" "$DIR/h"
done

# Small responder answers and SSE.
H -H "Origin: $ORIGIN" "$URL/health"
cors_ok "health" "$DIR/h"
H -X POST -H "Origin: $ORIGIN" "$URL/health"
is "405" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 405
cors_ok "405 JSON error" "$DIR/h"
H -H "Origin: $ORIGIN" "$URL/no-such-path"
is "404" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 404
cors_ok "404 JSON error (the catch-all location of scripts/pmacache's nginx)" "$DIR/h"
H -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" "$URL/status"
cors_ok "status" "$DIR/h"
is "status: the count" "$(jq .count "$DIR/b")" $A
H -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none"
is "SSE: text/event-stream" "$(hdrs "$DIR/h" Content-Type)" text/event-stream
cors_ok "SSE" "$DIR/h"
is "SSE: the events" "$(sse_kinds "$DIR/b")" "retry cached done"

# Errors: 500 (the sync can't be started) and 401; 429 at the end, once the page is tested.
chmod -x "$TMPBASE/clients-sync"
H -X POST -H "Origin: $ORIGIN" -H "X-API-Key: $KEY" "$URL/refresh"
chmod +x "$TMPBASE/clients-sync"
is "500 when the sync can't start" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 500
cors_ok "500 JSON error" "$DIR/h"
is "500 body" "$(jq -r .message "$DIR/b")" "Could not start the refresh"
H -H "Origin: $ORIGIN" "$URL/status"
is "401 without a key" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 401
cors_ok "401 JSON error" "$DIR/h"
is "401 body" "$(jq -c . "$DIR/b")" '{"status":"error","message":"Unauthorized"}'

# --- The example clients ----------------------------------------------------------------
log304() { grep -c '" 304 ' "$DIR/run/log/access.log"; }
# run_example NAME COMMAND...: in its own folder, with the URL and the key in the environment.
run_example() {
	local n=$1; shift
	reset_a
	mkdir -p "$DIR/$n"
	n304=$(log304)
	(cd "$DIR/$n" && PMACACHE_URL=$URL PMACACHE_KEY=$KEY timeout 120 "$@") > "$DIR/$n.out" 2> "$DIR/$n.err"
	is "$n: exit status" "$?" 0
	wait_idle
}
# counts NAME: the "count: N" lines, space separated.
counts() { sed -n 's/^count: //p' "$DIR/$1.out" | paste -sd' ' -; }

run_example curl sh "$TOP/examples/curl.sh"
check "curl: health" grep -q '"status":"healthy"' "$DIR/curl.out"
is "curl: status line" "$(sed -n 2p "$DIR/curl.out" | jq -c '[.count, .last_sync]')" "[$A,\"success\"]"
is "curl: fetch 200" "$(sed -n 's/^fetch: //p' "$DIR/curl.out")" 200
is "curl: count is the real row count" "$(counts curl)" $A
is "curl: revalidation gets 304" "$(sed -n 's/^revalidate: //p' "$DIR/curl.out")" 304
check "curl: the 304 is nginx's (access log)" test "$(log304)" -gt "$n304"
gz=$(sed -n 's/^gzip: \([0-9]*\) bytes.*/\1/p' "$DIR/curl.out")
plain=$(stat -c %s "$DIR/curl/orders.json")
check "curl: gzip sends less ($gz < $plain bytes)" test "${gz:-0}" -gt 0 -a "${gz:-0}" -lt "$plain"
is "curl: orders.json after gzip holds the rows" "$(jq '.data | length' "$DIR/curl/orders.json")" $A
is "curl: refresh triggered" "$(grep -c '^{"status":"triggered"}$' "$DIR/curl.out")" 1
check "curl: the stream follows the sync" grep -q '"type":"progress"' "$DIR/curl.out"
is "curl: the stream's updated count" "$(grep '"type":"updated"' "$DIR/curl.out" | jq .payload.count)" $B

for ex in "python:/usr/bin/python3 $TOP/examples/client.py" "node:node $TOP/examples/client.mjs"; do
	n=${ex%%:*}
	if [ "$n" = node ] && ! node -e 'process.exit(typeof fetch === "function" && typeof TextDecoderStream === "function" ? 0 : 1)'; then
		notok "node has the built-in fetch" "$(node --version)"
		continue
	fi
	# shellcheck disable=SC2086
	run_example $n ${ex#*:}
	is "$n: count before and after the refresh" "$(counts $n)" "$A $B"
	check "$n: revalidation gets 304" grep -qx 'revalidate: 304 not modified' "$DIR/$n.out"
	check "$n: the 304 is nginx's (access log)" test "$(log304)" -gt "$n304"
	check "$n: progress phases" grep -Eq '^progress: (starting|convert|swap)' "$DIR/$n.out"
	check "$n: a progress line with rows and bytes" grep -Eq '^progress: [a-z]+ rows=[0-9]+ bytes=[0-9]+' "$DIR/$n.out"
	is "$n: updated" "$(sed -n 's/^updated: \([0-9]*\) rows, etag ".*"$/\1/p' "$DIR/$n.out")" $B
	# (Node 18, Debian 12's, warns once that fetch is experimental: not an error.)
	is "$n: no errors" "$(grep -v -e 'ExperimentalWarning' -e 'node --trace-warnings' "$DIR/$n.err")" ""
done
check "python: requests is Debian's" /usr/bin/python3 -c 'import requests, sys; sys.exit(not requests.__file__.startswith("/usr/lib/python3/"))'

# The README's Clients section shows the examples as they stand: every line of its sh,
# python and js blocks is a line of the file (but the one line that points to the parser).
for pair in sh:curl.sh python:client.py js:client.mjs; do
	lang=${pair%%:*} file=$TOP/examples/${pair#*:}
	sed -n '/^## Clients/,/^## Configuration/p' "$TOP/README.md" |
		awk -v l="$lang" '/^```/ { inb = ($0 == "```" l) ? !inb : 0; next } inb' > "$DIR/readme.$lang"
	missing=$(grep -v -e '^$' -e 'a dozen lines in examples/' "$DIR/readme.$lang" | while IFS= read -r line; do
		grep -qFx -- "$line" "$file" || echo "$line"; done | head -n 3)
	check "README shows examples/${pair#*:} ($(grep -vc '^$' "$DIR/readme.$lang") lines)" test -s "$DIR/readme.$lang" -a -z "$missing"
	[ -z "$missing" ] || echo "# not in ${pair#*:}: $missing" >&2
done

# --- status.html in headless Chromium, served from $ORIGIN --------------------------------
site=$DIR/site
site_nginx "$site" "" "listen 127.0.0.1:$PAGE_PORT;"
cp "$TOP/examples/status.html" "$site/www/"
WDPORT=$(free_port)
WD=http://127.0.0.1:$WDPORT
SID=""
browser_stop() {
	[ -n "$SID" ] && curl -s --max-time 20 -X DELETE "$WD/session/$SID" >/dev/null
	SID=""
	[ -n "${WDPID:-}" ] && { kill "$WDPID" 2>/dev/null; wait "$WDPID" 2>/dev/null; }
	WDPID=""
}
browser_down() {
	browser_stop
	nginx -c "$site/nginx.conf" -p "$site" -s stop 2>/dev/null
	inst_down
}
trap browser_down EXIT
nginx -c "$site/nginx.conf" -p "$site" || { notok "the page's nginx starts"; finish; }
is "status.html is served from $ORIGIN" "$(code "$ORIGIN/status.html")" 200
# The browser runs as it does for a sync: as root, the driver and Chromium run as
# $PMC_USER, and Chromium keeps its own sandbox (no --no-sandbox) wherever the kernel lets
# that user make a user namespace.
mkdir -p "$DIR/home" "$DIR/profile"
as_pmc=()
if [ "$(id -u)" = 0 ]; then
	chown "$PMC_USER:" "$DIR/home" "$DIR/profile"
	touch "$DIR/chromedriver.log" && chown "$PMC_USER:" "$DIR/chromedriver.log"
	as_pmc=(setpriv --reuid="$PMC_USER" --regid="$PMC_USER" --init-groups)
fi
sandbox_ok() { "${as_pmc[@]}" unshare -U true 2>/dev/null; }
nosandbox='"--no-sandbox",'
sandbox_ok && nosandbox=''
"${as_pmc[@]}" env HOME="$DIR/home" chromedriver --port="$WDPORT" --log-path="$DIR/chromedriver.log" >/dev/null 2>&1 &
WDPID=$!
ready() { [ "$(curl -s --max-time 2 "$WD/status" | jq .value.ready)" = true ]; }
wait_for 20 ready || { notok "chromedriver ready"; finish; }

# wd METHOD PATH: a WebDriver command; the JSON body (if any) on stdin.
wd() {
	if [ "$1" = POST ]; then
		curl -s --max-time 90 -X POST -H 'Content-Type: application/json' --data-binary @- "$WD$2"
	else
		curl -s --max-time 90 -X "$1" "$WD$2"
	fi
}
# js SCRIPT [ARGS-JSON]: the value a synchronous script returns (-r: raw).
js() { jq -nc --arg s "$1" --argjson a "${2:-[]}" '{script: $s, args: $a}' | wd POST "/session/$SID/execute/sync" | jq -r .value; }
text() { js 'const e = document.querySelector(arguments[0]); return e ? e.textContent : null;' "[\"$1\"]"; }
# wait_text CSS WANT: until the element's text is WANT (at most 30 s).
wait_text() { local css=$1 want=$2; wait_for 30 eval '[ "$(text "$css")" = "$want" ]'; }
caps=$(jq -nc --arg dir "$DIR/profile" '{capabilities: {alwaysMatch: {browserName: "chrome",
	"goog:chromeOptions": {binary: "/usr/bin/chromium", args: ["--headless=new", '"$nosandbox"'
	"--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--window-size=1280,900", ("--user-data-dir=" + $dir),
	"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]},
	timeouts: {pageLoad: 30000, script: 30000, implicit: 0}}}}')
SID=$(wd POST /session <<<"$caps" | jq -r '.value.sessionId // empty')
[ -n "$SID" ] || { notok "a Chromium session" "$(tail -n 5 "$DIR/chromedriver.log")"; finish; }
ok "headless Chromium session through chromedriver"
# Who the page's browser runs as, and whether it kept its sandbox.
browser_pids=$(pgrep -f -- "--user-data-dir=$DIR/profile")
root_browsers=0 unsandboxed=0
for p in $browser_pids; do
	[ "$(stat -c %u "/proc/$p" 2>/dev/null)" = 0 ] && root_browsers=$((root_browsers + 1))
	tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -qx -- --no-sandbox && unsandboxed=$((unsandboxed + 1))
done
check "Chromium processes found" test -n "$browser_pids"
if [ "$(id -u)" = 0 ]; then
	is "no Chromium process runs as root" "$root_browsers" 0
else
	skip "no Chromium process runs as root" "the test does not run as root"
fi
if sandbox_ok; then
	is "Chromium keeps its sandbox: no --no-sandbox" "$unsandboxed" 0
else
	skip "Chromium keeps its sandbox" "this kernel forbids unprivileged user namespaces"
fi

reset_a
open_page() { jq -nc --arg u "$1" '{url: $u}' | wd POST "/session/$SID/url" >/dev/null; }
open_page "$ORIGIN/status.html#api=$URL"
check "the page loads" wait_text h1 "pmacache status"
check "health shows healthy" wait_text '#health' "health: healthy"
is "no key yet: no count" "$(text '#count')" "–"
# A wrong key: the page says so and keeps nothing.
type_key() {
	local eid
	eid=$(jq -nc '{using: "css selector", value: "#key"}' | wd POST "/session/$SID/element" | jq -r '.value | to_entries[0].value')
	printf '%s' "$1" | jq -Rsc '{text: (. + "\ue007")}' | wd POST "/session/$SID/element/$eid/value" >/dev/null
}
type_key "wrong-key-$RANDOM$RANDOM$RANDOM"
check "a wrong key: the page says the API refused it" wait_for 30 eval 'grep -q "refused this key (401)" <<<"$(text "#message")"'
is "a wrong key is not kept" "$(js 'return sessionStorage.getItem("pmacache.key");')" null
is "a wrong key: no count" "$(text '#count')" "–"
# The right key typed into #key, then Enter.
type_key "$KEY"
check "after the key: the count is the real row count ($A)" wait_text '#count' "$A"
check "the count is digits only" grep -Eqx '[0-9]+' <<<"$(text '#count')"
is "the key is kept in sessionStorage" "$(js 'return sessionStorage.getItem("pmacache.key") === arguments[0];' "$(jq -nc --arg k "$KEY" '[$k]')")" true
is "the key field is emptied" "$(js 'return document.getElementById("key").value;')" ""
is "the ETag shown is the API's" "$(text '#etag')" "$(api "$URL/status" | jq -r .etag)"
is "last sync shown" "$(text '#sync-result')" success
check "cache age shown" grep -Eq '^[0-9]+ (s|min)' <<<"$(text '#age')"
wait_for 10 eval '[ "$(js "return document.querySelectorAll(\"#rows tbody tr\").length;")" = 8 ]'
is "the first 8 rows in the table" "$(js 'return document.querySelectorAll("#rows tbody tr").length;')" 8
is "the table's first id is the data's" "$(js 'return document.querySelector("#rows tbody td").textContent;')" "$(api "$URL/fetch-data" | jq -r '.data[0].id')"
is "the table's columns are the data's" "$(js 'return [...document.querySelectorAll("#rows th")].map(e => e.textContent).join(",");')" "$(api "$URL/fetch-data" | jq -r '.data[0] | keys_unsorted | join(",")')"
is "no error message" "$(text '#message')" ""

# Refresh: the stream through fetch(), its phases live, then updated and the new count.
bid=$(jq -nc '{using: "css selector", value: "#refresh"}' | wd POST "/session/$SID/element" | jq -r '.value | to_entries[0].value')
wd POST "/session/$SID/element/$bid/click" <<<'{}' >/dev/null
check "updated shows, with the new count" wait_text '#phases li.updated' "updated · $B rows"
check "the count is the new row count ($B)" wait_text '#count' "$B"
phases=$(js 'return [...document.querySelectorAll("#phases li")].map(e => e.dataset.name).join(" ");')
check "the phases were shown ($phases)" grep -Eq '(starting|convert|swap) .*updated$' <<<"$phases"
ptext=$(js 'return [...document.querySelectorAll("#phases li")].map(e => e.textContent).join(" | ");')
check "a phase showed its rows and bytes ($ptext)" grep -Eq '[a-z]+ · [0-9]+ rows · [0-9.]+ (B|kB|MB)' <<<"$ptext"
wait_idle
check "the ETag follows the new snapshot" wait_text '#etag' "$(api "$URL/status" | jq -r .etag)"
check "the table shows the new first rows" wait_for 10 eval '[ "$(js "return document.querySelector(\"#rows tbody td\").textContent;")" = "$(api "$URL/fetch-data" | jq -r ".data[0].id")" ]'
is "no error message after the refresh" "$(text '#message')" ""
wd GET "/session/$SID/screenshot" | jq -r .value | base64 -d > "$DIR/status.png"
is "screenshot is a PNG" "$(head -c 8 "$DIR/status.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a
check "screenshot is not empty ($(stat -c %s "$DIR/status.png") bytes)" test "$(stat -c %s "$DIR/status.png")" -gt 10000

# A reload keeps the key (sessionStorage): the count comes without typing it again.
open_page "$ORIGIN/status.html#api=$URL"
check "after a reload: the count without the key typed again" wait_text '#count' "$B"

# The same page from an origin that is not in cors_origins (localhost is another origin
# than 127.0.0.1): the browser refuses the answers, and the page says why.
open_page "http://localhost:$PAGE_PORT/status.html#api=$URL"
type_key "$KEY"
check "another origin: the page names CORS" wait_for 30 eval 'grep -q cors_origins <<<"$(text "#message")"'
is "another origin: no count" "$(text '#count')" "–"
is "another origin: no health either" "$(text '#health')" "health: unreachable"
wd GET "/session/$SID/screenshot" | jq -r .value | base64 -d > "$DIR/status-other-origin.png"

# 429: past the bad-key burst (5), with CORS for the allowed origin only.
for i in $(seq 8); do H -H "Origin: $ORIGIN" -H "X-API-Key: wrong-key-$i-$RANDOM$RANDOM" "$URL/status"; done
is "429 past the bad-key burst" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 429
cors_ok "429 JSON error" "$DIR/h"
check "429: Retry-After (exposed to the page)" grep -Eq '^[0-9]+$' <(hdrs "$DIR/h" Retry-After)
H -H "Origin: $OTHER" -H "X-API-Key: wrong-key-x-$RANDOM$RANDOM" "$URL/status"
cors_none "429, another origin" "$DIR/h"
H -H "X-API-Key: $KEY" "$URL/status"
is "past the limit the right key gets 429 too (a guesser learns nothing)" "$(head -n1 "$DIR/h" | cut -d' ' -f2)" 429
browser_stop
no_chromium() { ! pgrep -f -- "--user-data-dir=$DIR/profile" >/dev/null; }
check "no Chromium left after the session" wait_for 15 no_chromium
finish
