#!/bin/bash
# The HTTP contract without data: /health, the answers before any cache, the key on every
# endpoint but /health, and method, path and query errors.
. "$(dirname "$0")/../lib.sh"
inst_up api_errors

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

# A key file edit takes effect without a restart. The responders notice a change by the
# file's identity and times; for 2 s after a change they also hash it (a rewrite within one
# timestamp tick). These edits come after that window, so the times alone must tell.
past_hash_window() { sleep 2.2; code -H "X-API-Key: $KEY" "$URL/status" >/dev/null; }
past_hash_window
KEY2=$(head -c 24 /dev/urandom | base64 | tr -d '=+/')
echo "$KEY2" >> "$DIR/api_keys"
is "new key works without restart" "$(code -H "X-API-Key: $KEY2" "$URL/status")" 200
# A same-size rewrite with the mtime put back (touch -r): the ctime still changes.
past_hash_window
KEY3=$(tr 'A-Za-z' 'N-ZA-Mn-za-m' <<<"$KEY2")
cp -p "$DIR/api_keys" "$DIR/api_keys.ref"
sed "s|^$KEY2\$|$KEY3|" "$DIR/api_keys.ref" > "$DIR/api_keys.new"
cat "$DIR/api_keys.new" > "$DIR/api_keys"
touch -r "$DIR/api_keys.ref" "$DIR/api_keys"
is "same size, same mtime: the file's size is unchanged" "$(stat -c %s "$DIR/api_keys")" "$(stat -c %s "$DIR/api_keys.ref")"
is "same size, same mtime: the revoked key is refused" "$(code -H "X-API-Key: $KEY2" "$URL/status")" 401
is "same size, same mtime: the new key works" "$(code -H "X-API-Key: $KEY3" "$URL/status")" 200

finish
