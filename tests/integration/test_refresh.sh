#!/bin/bash
# Refreshes: ?refresh=true and POST /refresh start the sync in the background, a failed sync
# is recorded and the cache still served, and a second refresh while one runs starts nothing.
. "$(dirname "$0")/../lib.sh"
inst_up refresh

"$GEN" -n 500 csv > "$DIR/orders.csv"
check "import" "$SYNC" -c "$CONF" --csv "$DIR/orders.csv"

# Background refresh. No phpMyAdmin is configured here, so the sync fails fast.
b=$(api "$URL/fetch-data?refresh=true")
is "refresh=true: _info" "$(jq -r ._info <<<"$b")" "Background refresh triggered"
is "refresh=true: same data" "$(jq -c '[.count,(.data|length)]' <<<"$b")" '[500,500]'
etag=$(curl -sI -H "X-API-Key: $KEY" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
wait_idle
is "refresh=true with the current ETag: 304" "$(code -H "X-API-Key: $KEY" -H "If-None-Match: $etag" "$URL/fetch-data?refresh=true")" 304
is "refresh=true with another ETag: 200" "$(code -H "X-API-Key: $KEY" -H 'If-None-Match: "other"' "$URL/fetch-data?refresh=true")" 200
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
check "the sync holds the lock" wait_for 10 sync_running
is "POST /refresh while running" "$(api -X POST "$URL/refresh" | jq -c .)" '{"status":"already in progress"}'
is "refresh=true while running" "$(api "$URL/fetch-data?refresh=true" | jq -r ._info)" "Refresh already in progress"
is "status shows it" "$(api "$URL/status" | jq .update_in_progress)" true
"$SYNC" -c "$CONF" 2>/dev/null
is "a CLI sync meanwhile: exit 9" "$?" 9
wait_idle


# A sync that cannot even be started (here its log cannot be opened): the refresh answers
# 500, and /status says why, as it would for a sync that failed.
wait_idle
mv "$DIR/run/log/sync.log" "$DIR/run/log/sync.log.keep" 2>/dev/null
mkdir "$DIR/run/log/sync.log"
is "a sync that cannot start: POST /refresh 500" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 500
st=$(api "$URL/status")
is "a sync that cannot start: /status says failed" "$(jq -r .last_sync.result <<<"$st")" failed
check "a sync that cannot start: /status says why ($(jq -r .last_sync.error <<<"$st"))" \
	grep -q "sync.log" <<<"$(jq -r .last_sync.error <<<"$st")"
is "a sync that cannot start: nothing runs" "$(jq .update_in_progress <<<"$st")" false
rmdir "$DIR/run/log/sync.log"
is "once it can start again: POST /refresh 202" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 202
wait_idle
finish
