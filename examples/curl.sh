#!/bin/sh
# pmacache from the shell: every endpoint with curl, and jq to read the JSON.
#
#   PMACACHE_URL=http://127.0.0.1:8080 PMACACHE_KEY=... sh examples/curl.sh
#
# It keeps the data in orders.json and its ETag in orders.etag in the current folder, so a
# second run only revalidates. The key reaches curl through a header file (-H @file) rather
# than its command line, where every user of the machine could read it with ps.
set -eu
url=${PMACACHE_URL:-http://127.0.0.1:8080}
: "${PMACACHE_KEY:?set PMACACHE_KEY to an API key}"
umask 077
hdr=$(mktemp)
trap 'rm -f "$hdr"' EXIT
printf 'X-API-Key: %s\n' "$PMACACHE_KEY" > "$hdr"

# Health: no key needed.
curl -fsS "$url/health"

# The cache and the last sync.
curl -fsS -H @"$hdr" "$url/status" | jq -c '{count, age_seconds, etag, last_sync: .last_sync.result}'

# The data. --etag-save keeps the ETag; --etag-compare sends it back as If-None-Match, and
# an unchanged cache answers 304 with no body (orders.json stays as it is).
code=$(curl -fsS -H @"$hdr" --etag-compare orders.etag --etag-save orders.etag \
	-o orders.json -w '%{http_code}' "$url/fetch-data")
echo "fetch: $code"
echo "count: $(jq '.data | length' orders.json)"
code=$(curl -fsS -H @"$hdr" --etag-compare orders.etag --etag-save orders.etag \
	-o orders.json -w '%{http_code}' "$url/fetch-data")
echo "revalidate: $code" # 304: not modified

# Compressed: nginx sends the precompressed copy; curl unpacks it.
curl -fsS -H @"$hdr" --compressed -o orders.json \
	-w 'gzip: %{size_download} bytes on the wire\n' "$url/fetch-data"

# Start a sync in the background: {"status":"triggered"} or {"status":"already in progress"}.
curl -fsS -X POST -H @"$hdr" "$url/refresh"

# Follow it as Server-Sent Events. payload=none: the events carry only count, etag and
# last_updated rather than all the rows. Prints one JSON object per event.
curl -fsSN -H @"$hdr" "$url/fetch-data?stream=true&payload=none" | sed -n 's/^data: //p'
