#!/bin/bash
# Load while syncs run: wrk on /fetch-data (plain, 304, gzip) during back-to-back imports:
# no answer but 200/304, responder fds and RSS flat, no zombies, no temp files.
# make test runs a short version; make test-long: LOAD_CYCLES=1000 LOAD_SECONDS=60.
# Imports publish at most one snapshot a second (each has its own Last-Modified second): the
# importer stops after LOAD_CYCLES imports or when the wrk runs end, whichever comes first.
. "$(dirname "$0")/../lib.sh"
CYCLES=${LOAD_CYCLES:-100}
SECS=${LOAD_SECONDS:-10}
inst_up load "min_rows_ratio = 0"
"$GEN" -n 2000 csv > "$DIR/a.csv"
"$GEN" -n 2100 -s 5 csv > "$DIR/b.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
pids=$(pgrep -f "pmacache-fcgi -c $CONF" | tr '\n' ' ')
fds() { local n=0 p; for p in $pids; do n=$((n + $(ls /proc/$p/fd | wc -l))); done; echo $n; }
rss() { local n=0 p; for p in $pids; do n=$((n + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $n; }
wrk -t2 -c50 -d2s -H "X-API-Key: $KEY" "$URL/fetch-data" >/dev/null 2>&1

etag=$(curl -sI -H "X-API-Key: $KEY" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
( for i in $(seq "$CYCLES"); do
	f=$DIR/a.csv; [ $((i % 2)) = 0 ] && f=$DIR/b.csv
	"$SYNC" -c "$CONF" --csv "$f" 2>/dev/null || echo "import $i failed" >> "$DIR/import-errors"
	echo "$i" > "$DIR/imports"
	[ -e "$DIR/stop" ] && break
done ) &
importer=$!
run() { wrk -t2 -c50 -d"${SECS}s" "$@" 2>&1; }
out1=$(run -H "X-API-Key: $KEY" "$URL/fetch-data")
# The baseline once the threads have all served (their stacks and arenas touched).
fd0=$(fds); rss0=$(rss)
out2=$(run -H "X-API-Key: $KEY" -s "$TOP/tests/tools/wrk-etag.lua" "$URL/fetch-data" -- "$etag")
out3=$(run -H "X-API-Key: $KEY" -H "Accept-Encoding: gzip" "$URL/fetch-data")
touch "$DIR/stop"
wait $importer
n=$(cat "$DIR/imports" 2>/dev/null || echo 0)
for o in "$out1" "$out2" "$out3"; do
	check "wrk ran ($(awk '/requests in/{print $1}' <<<"$o") requests)" grep -q 'requests in' <<<"$o"
	# wrk reports answers with a status of 400 or more as "Non-2xx or 3xx responses".
	is "no 4xx/5xx answer" "$(grep -c 'Non-2xx' <<<"$o")" 0
	is "no socket errors" "$(grep -c 'Socket errors' <<<"$o")" 0
done
# The revalidating run: each connection sends the last ETag it got, so a body comes only once
# per connection and snapshot; every other answer is a 304.
st=$(grep -o 'statuses 200=[0-9]* 304=[0-9]* other=[0-9]*' <<<"$out2")
n200=$(sed -E 's/.*200=([0-9]+).*/\1/' <<<"$st"); n304=$(sed -E 's/.*304=([0-9]+).*/\1/' <<<"$st")
nother=$(sed -E 's/.*other=([0-9]+).*/\1/' <<<"$st")
check "the If-None-Match run counted its answers ($st)" test -n "$st"
is "the If-None-Match run: no answer but 200 and 304" "${nother:-x}" 0
check "the If-None-Match run got mostly 304s, not bodies (${n304:-0} 304s, ${n200:-0} bodies)" \
	test "${n304:-0}" -gt $((4 * ${n200:-1}))
check "imports ran during the load ($n)" test "$n" -ge 3
is "all $n imports succeeded" "$(cat "$DIR/import-errors" 2>/dev/null | wc -l)" 0
fd1=$(fds); rss1=$(rss)
check "responder fds flat ($fd0 -> $fd1)" test "$fd1" -le $((fd0 + 8))
check "responder RSS flat (${rss0} kB -> ${rss1} kB)" test "$rss1" -le $((rss0 + rss0 / 5 + 1024))
no_zombies "no zombies"
is "no temp files" "$(ls "$CACHE" | grep -c '^tmp\.')" 0
is "exactly 3 snapshots kept after $n imports (the current and the 2 before)" "$(ls "$CACHE/snapshots" | wc -l)" 3
finish
