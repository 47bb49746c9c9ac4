#!/bin/bash
# Serving a snapshot: the body, its shape, ETag and 304, gzip, HEAD, and /status.
. "$(dirname "$0")/../lib.sh"
inst_up fetch

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
finish
