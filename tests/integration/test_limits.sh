#!/bin/bash
# The per-client limits (nginx limit_req / limit_conn and the responders' bad-key limit, values
# from pmacache.conf): a flood of wrong keys gets 429 after its burst, and then every key does,
# the right one included, until the window passes (the right key itself is never counted),
# refreshes are limited per client (POST /refresh and ?refresh=true alike), and open SSE
# streams per client are capped. All from 127.0.0.1, so "per client" is this test.
. "$(dirname "$0")/../lib.sh"
inst_up limits "limit_bad_keys_per_min = 6
limit_bad_keys_burst = 5
limit_refresh_per_min = 2
limit_refresh_burst = 3
limit_streams_per_client = 2
sse_heartbeat_s = 1
min_rows_ratio = 0"
# The sync /refresh starts waits until the test creates $DIR/go, so it is running for as
# long as the test needs (it holds the lock from the start).
cat > "$DIR/gated-sync" <<SH
#!/bin/sh
i=0
while [ ! -e "$DIR/go" ] && [ \$i -lt 900 ]; do sleep 0.1; i=\$((i + 1)); done
exec "$SYNC" "\$@" --csv "$DIR/a.csv"
SH
chmod +x "$DIR/gated-sync"
sed -i "s|^sync_bin = .*|sync_bin = $DIR/gated-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
"$GEN" -n 30 csv > "$DIR/a.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
check "the rendered drop-in has the configured limits" grep -q 'zone=pmacache_refresh burst=3 nodelay' "$DIR/run/pmacache-locations.conf"

# 1. The right key is not counted against anything.
codes=$(for i in $(seq 40); do code -H "X-API-Key: $KEY" "$URL/status"; echo; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ' -)
is "40 requests with the right key: all 200" "$codes" "200x40"

# 2. A bad-key flood: the burst (5) plus one get the responder's 401, then 429. The
# keyless request for the reference body is the first of the six.
want401=$(curl -s "$URL/status")
for i in $(seq 30); do
	curl -s -D "$DIR/bad.h$i" -o "$DIR/bad.b$i" -H "X-API-Key: wrong-key-$i-$RANDOM$RANDOM" "$URL/status"
done
first=$(for i in 1 2 3 4 5; do sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' "$DIR/bad.h$i"; done | paste -sd' ' -)
is "the next five bad keys get 401" "$first" "401 401 401 401 401"
check "with the one 401 body" test "$(cat "$DIR"/bad.b{1..5} | sort -u)" = "$want401"
n429=$(grep -l '^HTTP/1.1 429' "$DIR"/bad.h* | wc -l)
check "then 429 ($n429 of 30)" test "$n429" -ge 20
last=$(grep -l '^HTTP/1.1 429' "$DIR"/bad.h* | head -n1)
check "429 says Retry-After" grep -qi '^Retry-After: [0-9]' "$last"
check "429 is JSON" grep -qi '^Content-Type: application/json' "$last"
is "429 body names the problem" "$(jq -r .message "${last%.h*}.b${last##*.h}")" "Too many requests from this client: retry later"
# Past the limit the right key gets 429 too (a guesser learns nothing), until the window
# passes (6 a minute: one more bad key every 10 s). It is not counted itself.
curl -s -D "$DIR/right.h" -o "$DIR/right.b" -H "X-API-Key: $KEY" "$URL/fetch-data"
check "the right key meanwhile: 429" grep -q '^HTTP/1.1 429' "$DIR/right.h"
is "with the same body" "$(jq -r .message "$DIR/right.b")" "Too many requests from this client: retry later"
ra=$(awk -F': ' 'tolower($1)=="retry-after"{print $2+0}' "$DIR/right.h")
check "and Retry-After within the window ($ra s)" test "${ra:-0}" -ge 1 -a "${ra:-0}" -le 10
for p in /status "/fetch-data?stream=true" "/fetch-data?refresh=true"; do
	is "the right key on $p meanwhile: 429" "$(code --max-time 5 -H "X-API-Key: $KEY" "$URL$p")" 429
done
is "a right key on POST /refresh meanwhile: 429" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 429
is "/health meanwhile: 200" "$(code "$URL/health")" 200
is "no key at all is a bad key too: 429" "$(code "$URL/status")" 429
right_ok() { [ "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" = 200 ]; }
check "once the window has passed, the right key gets 200 (bounded wait 25 s)" wait_for 25 right_ok
check "the right key gets the data" cmp -s <(api "$URL/fetch-data") "$CACHE/data_cache.json"

# 3. Refreshes per client: one sync runs; past the burst (3) the client gets 429, for
# POST /refresh and ?refresh=true alike. Plain reads are not refreshes.
seq 50 | xargs -P 50 -I{} curl -s -X POST -H "X-API-Key: $KEY" "$URL/refresh" -o "$DIR/r.{}" -w '%{http_code}\n' > "$DIR/codes"
is "50 concurrent POST /refresh: exactly one triggered" "$(cat "$DIR"/r.* | grep -c '"triggered"')" 1
n202=$(grep -c '^202$' "$DIR/codes")
n429=$(grep -c '^429$' "$DIR/codes")
is "the others: already in progress, or 429" "$((n202 + n429))" 50
is "202s are one triggered plus already in progress" "$(cat "$DIR"/r.* | grep -c '"already in progress"')" "$((n202 - 1))"
check "most got 429 ($n429)" test "$n429" -ge 40
is "one sync process" "$(pgrep -f -c "gated-sync -c $CONF" || true)" 1
is "?refresh=true is limited too" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data?refresh=true")" 429
is "a percent-encoded refresh too" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data?r%65fresh=true")" 429
is "a plain read is not a refresh: 200" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
is "/status is not a refresh: 200" "$(code -H "X-API-Key: $KEY" "$URL/status")" 200

# 4. Open streams per client (2): a third gets 429; closing one frees its place. The
# streams follow the sync still waiting for $DIR/go, so they stay open.
for i in 1 2; do
	curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none" -o "$DIR/s$i" &
	eval "s$i=\$!"
done
wait_for 10 test -s "$DIR/s2" -a -s "$DIR/s1"
curl -s -D "$DIR/third.h" -o "$DIR/third.b" -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none"
check "a third stream gets 429" grep -q '^HTTP/1.1 429' "$DIR/third.h"
is "with the JSON reason" "$(jq -r .status "$DIR/third.b")" error
is "plain requests meanwhile: 200" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
kill "$s1"
third_ok() { [ "$(curl -sN --max-time 2 -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none")" = 200 ]; }
check "after one closes, a new stream is let in" wait_for 10 third_ok
touch "$DIR/go"
wait "$s2"
is "the remaining stream saw the sync through" "$(sse_kinds "$DIR/s2")" "retry cached progress updated done"
wait_idle
is "the one sync succeeded" "$(api "$URL/status" | jq -r .last_sync.result)" success
finish
