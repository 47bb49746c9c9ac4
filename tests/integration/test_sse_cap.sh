#!/bin/bash
# sse_max_streams: past it, a stream gets 503 with Retry-After, and frees its slot on close.
. "$(dirname "$0")/../lib.sh"
inst_up ssecap "sse_max_streams = 3
sse_heartbeat_s = 1
min_rows_ratio = 0"
make_csv_sync
sed -i "s|^sync_bin = .*|sync_bin = $DIR/csv-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
"$GEN" -n 20 csv > "$DIR/a.csv"
echo "$DIR/a.csv" > "$DIR/next.csv"; echo 4 > "$DIR/sleep"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
is "refresh triggered" "$(api -X POST "$URL/refresh" | jq -r .status)" triggered
for i in 1 2 3; do timeout 20 curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true" -o "$DIR/s$i" & done
opened() { for i in 1 2 3; do grep -q '^event: cached' "$DIR/s$i" 2>/dev/null || return 1; done; }
check "three streams open (the cap)" wait_for 15 opened
curl -s -D "$DIR/h" -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true" -o "$DIR/over"
check "the fourth stream gets 503" grep -q '^HTTP/1.1 503' "$DIR/h"
check "with Retry-After" grep -qi '^Retry-After: [0-9]' "$DIR/h"
is "and a JSON reason" "$(jq -r .status "$DIR/over")" error
is "other requests still answered" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
wait
is "the three streams ended with done" "$(for i in 1 2 3; do tail -n 2 "$DIR/s$i" | grep -c '"type":"done"'; done | awk "{s+=\$1} END {print s}")" 3
timeout 20 curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true" -o "$DIR/after"
is "slots are freed after close" "$(grep -c '^event: done' "$DIR/after")" 1
finish
