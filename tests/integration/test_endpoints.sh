#!/bin/bash
# Every endpoint and status code of the HTTP contract, through real nginx + spawn-fcgi.
. "$(dirname "$0")/../lib.sh"
inst_up endpoints

# /health needs no key.
body=$(curl -s "$URL/health")
is "health status" "$(jq -r .status <<<"$body")" healthy
check "health timestamp is ISO-8601 UTC" grep -Eq '"timestamp":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"' <<<"$body"
is "health content type" "$(curl -s -o /dev/null -w '%{content_type}' "$URL/health")" application/json

# Before any cache.
is "fetch-data before cache: 503" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 503
is "fetch-data before cache: message" "$(api "$URL/fetch-data" | jq -c .)" '{"status":"error","message":"No cached data"}'
st=$(api "$URL/status")
is "status before cache" "$(jq -c '[.status,.cache_exists,.count,.last_updated,.age_seconds,.update_in_progress]' <<<"$st")" '["ok",false,0,null,null,false]'

# Auth on every endpoint but /health.
for p in /status /fetch-data; do
	is "$p without key: 401" "$(code "$URL$p")" 401
	is "$p empty key: 401" "$(code -H "X-API-Key;" "$URL$p")" 401
	is "$p wrong key: 401" "$(code -H "X-API-Key: nope-$KEY" "$URL$p")" 401
done
is "refresh without key: 401" "$(code -X POST "$URL/refresh")" 401
is "401 body" "$(curl -s "$URL/status" | jq -c .)" '{"status":"error","message":"Unauthorized"}'
is "key in query string is not accepted" "$(code "$URL/status?api_key=$KEY")" 401

# Method and path errors.
is "POST /health: 405" "$(code -X POST "$URL/health")" 405
check "405 has Allow" grep -qi '^Allow: GET, HEAD' <(curl -s -D - -o /dev/null -X POST "$URL/health")
is "GET /refresh: 405" "$(code -H "X-API-Key: $KEY" "$URL/refresh")" 405
check "GET /refresh Allow: POST" grep -qi '^Allow: POST' <(curl -s -D - -o /dev/null "$URL/refresh")
is "unknown path: 404" "$(code "$URL/nope")" 404
is "404 is JSON" "$(curl -s "$URL/nope" | jq -r .status)" error
is "bad query: 400" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data?refresh=maybe")" 400

# Import, then serve.
"$GEN" -n 500 csv > "$DIR/orders.csv"
check "import" "$SYNC" -c "$CONF" --csv "$DIR/orders.csv"
api -D "$DIR/h" -o "$DIR/body" "$URL/fetch-data"
check "fetch-data 200" grep -q '^HTTP/1.1 200' "$DIR/h"
check "fetch-data body is the snapshot" cmp -s "$DIR/body" "$CACHE/data_cache.json"
is "fetch-data shape" "$(jq -c '[.status,.count,(.data|length),(.data[0]|keys_unsorted|length)]' "$DIR/body")" '["success",500,500,16]'
is "columns in table order" "$(jq -c '.data[0]|keys_unsorted[0:3]' "$DIR/body")" '["id","order_number","email"]'
check "content type json" grep -qi '^Content-Type: application/json' "$DIR/h"
etag=$(grep -i '^ETag:' "$DIR/h" | cut -d' ' -f2 | tr -d '\r')
check "ETag present" test -n "$etag"
check "Last-Modified present" grep -qi '^Last-Modified:' "$DIR/h"
is "If-None-Match: 304" "$(code -H "X-API-Key: $KEY" -H "If-None-Match: $etag" "$URL/fetch-data")" 304
is "other ETag: 200" "$(code -H "X-API-Key: $KEY" -H 'If-None-Match: "nope"' "$URL/fetch-data")" 200
is "304 needs the key too" "$(code -H "If-None-Match: $etag" "$URL/fetch-data")" 401
api -H 'Accept-Encoding: gzip' -D "$DIR/hz" -o "$DIR/body.gz" "$URL/fetch-data"
check "gzip: Content-Encoding" grep -qi '^Content-Encoding: gzip' "$DIR/hz"
check "gzip: same JSON" cmp -s <(gunzip -c "$DIR/body.gz") "$CACHE/data_cache.json"
check "gzip: smaller" test "$(stat -c %s "$DIR/body.gz")" -lt "$(stat -c %s "$DIR/body")"
is "HEAD fetch-data" "$(code -I -H "X-API-Key: $KEY" "$URL/fetch-data")" 200

st=$(api "$URL/status")
is "status after import" "$(jq -c '[.cache_exists,.count,.size_bytes,.last_sync.result,.last_sync.rows]' <<<"$st")" "[true,500,$(stat -L -c %s "$CACHE/data_cache.json"),\"success\",500]"
check "status age" test "$(jq .age_seconds <<<"$st")" -ge 0

# Background refresh. No phpMyAdmin is configured here, so the sync fails fast.
b=$(api "$URL/fetch-data?refresh=true")
is "refresh=true: _info" "$(jq -r ._info <<<"$b")" "Background refresh triggered"
is "refresh=true: same data" "$(jq -c '[.count,(.data|length)]' <<<"$b")" '[500,500]'
wait_idle
st=$(api "$URL/status")
is "failed sync recorded" "$(jq -r .last_sync.result <<<"$st")" failed
check "failure names the problem" grep -q 'phpMyAdmin is not configured' <<<"$(jq -r .last_sync.error <<<"$st")"
check "cache still served after the failed sync" cmp -s <(api "$URL/fetch-data") "$CACHE/data_cache.json"
is "POST /refresh: 202" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 202
wait_idle
# While a sync holds the lock: a sync (the real one) that sleeps first, holding it.
printf '#!/bin/sh\nsleep 2\nexec %s "$@"\n' "$SYNC" > "$DIR/slow-sync"
chmod +x "$DIR/slow-sync"
sed -i "s|^sync_bin = .*|sync_bin = $DIR/slow-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
is "POST /refresh: triggered" "$(api -X POST "$URL/refresh" | jq -c .)" '{"status":"triggered"}'
sleep 0.3
is "POST /refresh while running" "$(api -X POST "$URL/refresh" | jq -c .)" '{"status":"already in progress"}'
is "refresh=true while running" "$(api "$URL/fetch-data?refresh=true" | jq -r ._info)" "Refresh already in progress"
is "status shows it" "$(api "$URL/status" | jq .update_in_progress)" true
"$SYNC" -c "$CONF" 2>/dev/null
is "a CLI sync meanwhile: exit 9" "$?" 9
wait_idle

# A key file edit takes effect without a restart.
KEY2=$(head -c 24 /dev/urandom | base64 | tr -d '=+/')
echo "$KEY2" >> "$DIR/api_keys"
is "new key works without restart" "$(code -H "X-API-Key: $KEY2" "$URL/status")" 200

# A bad import leaves the cache as it was.
cp "$CACHE/data_cache.json" "$DIR/before"
head -c 3000 "$DIR/orders.csv" > "$DIR/cut.csv"
"$SYNC" -c "$CONF" --csv "$DIR/cut.csv" 2>"$DIR/err"
is "truncated export: exit 7" "$?" 7
check "truncated export: message with file:line:column" grep -q 'cut.csv:[0-9]*:[0-9]*: ' "$DIR/err"
check "cache unchanged" cmp -s "$DIR/before" "$CACHE/data_cache.json"
printf '<html><body>Session expired</body></html>' > "$DIR/page.csv"
"$SYNC" -c "$CONF" --csv "$DIR/page.csv" 2>/dev/null
is "HTML export: exit 7" "$?" 7
"$GEN" -n 100 csv > "$DIR/small.csv"
"$SYNC" -c "$CONF" --csv "$DIR/small.csv" 2>"$DIR/err"
is "shrink guard: exit 7" "$?" 7
check "shrink guard names min_rows_ratio" grep -q min_rows_ratio "$DIR/err"
check "cache unchanged after refusals" cmp -s "$DIR/before" "$CACHE/data_cache.json"
check "--force accepts the shrink" "$SYNC" -c "$CONF" --csv "$DIR/small.csv" --force
is "served count after --force" "$(api "$URL/fetch-data" | jq .count)" 100
is "no temp files left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0
finish
