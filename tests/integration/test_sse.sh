#!/bin/bash
# GET /fetch-data?stream=true: event order and shapes, ids, resume, payload=none, heartbeats,
# vanished clients, many streams at once, and the stream cap.
. "$(dirname "$0")/../lib.sh"
DIR=$TMPBASE/sse
rm -rf "$DIR"; mkdir -p "$DIR"
make_csv_sync
# Streams may hold at most half of a responder's threads, and the 50 opened at once below may
# all land on one of the two responders: 128 threads each.
inst_up sse "sync_bin = $TMPBASE/sse-sync
sse_heartbeat_s = 1
sse_max_streams = 60
sse_retry_ms = 1500
threads = 128
min_rows_ratio = 0"
# inst_up recreated DIR: put the wrapper where the config points.
make_csv_sync; cp "$DIR/csv-sync" "$TMPBASE/sse-sync"
"$GEN" -n 300 csv > "$DIR/a.csv"
"$GEN" -n 200 -s 9 csv > "$DIR/b.csv"
head -c 5000 "$DIR/b.csv" > "$DIR/cut.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
stream() { # out-file [query] [curl args]: a whole stream, bounded in time
	local out=$1 q=${2:-}; shift; [ $# -gt 0 ] && shift
	timeout 60 curl -sN -H "X-API-Key: $KEY" -D "$out.h" "$@" "$URL/fetch-data?stream=true$q" -o "$out"
}

# No refresh, no sync: cached, then done.
stream "$DIR/s1"
check "content type" grep -qi '^Content-Type: text/event-stream' "$DIR/s1.h"
check "no-cache" grep -qi '^Cache-Control: no-cache' "$DIR/s1.h"
is "retry comes first" "$(head -n1 "$DIR/s1")" "retry: 1500"
is "events: cached done" "$(sse_kinds "$DIR/s1")" "retry cached done"
etag=$(api -sI "$URL/fetch-data" | grep -i '^ETag:' | cut -d' ' -f2 | tr -d '\r')
is "cached id is the ETag" "$(sse_parse "$DIR/s1" | awk -F'\t' '$1=="cached"{print $2}')" "$etag"
api "$URL/fetch-data" > "$DIR/body.json"
is "cached payload is the /fetch-data body" "$(sse_data "$DIR/s1" cached | jq -c .payload)" "$(jq -c . "$DIR/body.json")"
is "done shape" "$(sse_data "$DIR/s1" done)" '{"type":"done"}'
is "stream needs a key" "$(code "$URL/fetch-data?stream=true")" 401

# Resume: Last-Event-ID naming the current snapshot gets no second copy.
stream "$DIR/s2" "" -H "Last-Event-ID: $etag"
is "Last-Event-ID: unchanged" "$(sse_data "$DIR/s2" cached | jq -c .)" '{"type":"cached","payload":null,"unchanged":true}'
stream "$DIR/s3" "&last_event_id=$(jq -rn --arg e "$etag" '$e|@uri')"
is "?last_event_id: unchanged" "$(sse_data "$DIR/s3" cached | jq -c .unchanged)" true
stream "$DIR/s4" "" -H 'Last-Event-ID: "old-one"'
is "an old id gets the payload" "$(sse_data "$DIR/s4" cached | jq .payload.count)" 300

# payload=none.
stream "$DIR/s5" "&payload=none"
is "payload=none: summary only" "$(sse_data "$DIR/s5" cached | jq -c '.payload|keys')" '["count","etag","last_updated"]'
is "payload=none: etag" "$(sse_data "$DIR/s5" cached | jq -r .payload.etag)" "$etag"

# Refresh with success: cached, progress..., updated (the new data), done.
echo "$DIR/b.csv" > "$DIR/next.csv"; echo 2 > "$DIR/sleep"
stream "$DIR/s6" "&refresh=true"
is "refresh success: event order" "$(sse_kinds "$DIR/s6")" "retry cached progress updated done"
check "progress events" test "$(sse_parse "$DIR/s6" | awk -F'\t' '$1=="progress"' | wc -l)" -ge 1
pr=$(sse_parse "$DIR/s6" | awk -F'\t' '$1=="progress"{print $3}' | tail -n1)
is "progress keys" "$(jq -c 'keys' <<<"$pr")" '["bytes","phase","rows","type"]'
dups=$(sse_parse "$DIR/s6" | awk -F'\t' '$1=="progress"{print $3}' | uniq -d | wc -l)
is "a progress event only when phase, rows or bytes change" "$dups" 0
check "progress phase is known" grep -Eq '"phase":"(starting|login|export|download|convert|swap)"' <<<"$pr"
is "updated carries the new data" "$(sse_data "$DIR/s6" updated | jq .payload.count)" 200
new=$(api -sI "$URL/fetch-data" | grep -i '^ETag:' | cut -d' ' -f2 | tr -d '\r')
is "updated id is the new ETag" "$(sse_parse "$DIR/s6" | awk -F'\t' '$1=="updated"{print $2}')" "$new"
check "heartbeats arrive during the sync" grep -q '^: ping' "$DIR/s6"
wait_idle

# A sync that rewrites progress.json with only its elapsed time changing (as a download
# waiting on phpMyAdmin does): one progress event, not one per rewrite. The wrapper writes
# the file as the sync does (a rename), then runs the real sync.
cat > "$DIR/waiting-sync" <<SH
#!/bin/sh
for i in 1 2 3 4 5 6; do
	printf '{"phase":"download","rows":null,"bytes":4096,"pid":%d,"started_at":"x","elapsed_s":%d.5}' \$\$ \$i > "$CACHE/tmp.progress.w"
	mv "$CACHE/tmp.progress.w" "$CACHE/progress.json"
	sleep 0.4
done
exec "$SYNC" "\$@" --csv "$DIR/b.csv"
SH
chmod +x "$DIR/waiting-sync"
sed -i "s|^sync_bin = .*|sync_bin = $DIR/waiting-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
stream "$DIR/s6w" "&refresh=true&payload=none"
is "waiting sync: event order" "$(sse_kinds "$DIR/s6w")" "retry cached progress updated done"
is "six rewrites with the same phase and bytes: one progress event" \
	"$(sse_parse "$DIR/s6w" | awk -F'\t' '$1=="progress"{print $3}' | grep -c '"phase":"download"')" 1
sed -i "s|^sync_bin = .*|sync_bin = $TMPBASE/sse-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
wait_idle

# Refresh with failure: cached, progress..., failed, done; the cache is unchanged.
cp "$CACHE/data_cache.json" "$DIR/before.json"
echo "$DIR/cut.csv" > "$DIR/next.csv"; echo 1 > "$DIR/sleep"
stream "$DIR/s7" "&refresh=true"
is "refresh failure: event order" "$(sse_kinds "$DIR/s7")" "retry cached progress failed done"
check "failed names the problem" grep -q unterminated <<<"$(sse_data "$DIR/s7" failed | jq -r .error)"
is "failed shape" "$(sse_data "$DIR/s7" failed | jq -c keys)" '["error","type"]'
check "cache unchanged" cmp -s "$DIR/before.json" "$CACHE/data_cache.json"
wait_idle

# A stream joining a sync that is already running.
echo "$DIR/a.csv" > "$DIR/next.csv"; echo 2 > "$DIR/sleep"
is "refresh triggered" "$(api -X POST "$URL/refresh" | jq -r .status)" triggered
stream "$DIR/s8"
is "joining: event order" "$(sse_kinds "$DIR/s8")" "retry cached progress updated done"
wait_idle

# Vanished clients: 50 streams killed mid-way; the responders' fds and memory stay flat.
pids=$(pgrep -f "pmacache-fcgi -c $CONF" | tr '\n' ' ')
fds() { local n=0 p; for p in $pids; do n=$((n + $(ls /proc/$p/fd | wc -l))); done; echo $n; }
rss() { local n=0 p; for p in $pids; do n=$((n + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $n; }
# Two rounds: the first touches what a process opens once (its inotify reader, the slot
# file) in every responder; the second must leave the fds and memory where the first did.
echo 6 > "$DIR/sleep"
api -X POST "$URL/refresh" >/dev/null
check "the sync runs" wait_for 10 sync_running
vanish() {
	local i
	for i in $(seq 50); do
		timeout 0.5 curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true" -o /dev/null &
	done
	wait
	sleep 1.5 # the next heartbeat (1 s) notices the vanished clients
}
vanish
fd0=$(fds); rss0=$(rss)
vanish
# A stream that lost its client closes at its next heartbeat: wait for the fds to go back.
wait_for 10 sh -c "[ \$(for p in $pids; do ls /proc/\$p/fd; done | wc -l) -le $((fd0 + 4)) ]"
is "health after 100 vanished clients" "$(code "$URL/health")" 200
fd1=$(fds); rss1=$(rss)
check "fds flat over 50 more vanished clients ($fd0 -> $fd1)" test "$fd1" -le $((fd0 + 4))
check "RSS flat over 50 more vanished clients (${rss0} kB -> ${rss1} kB)" test "$rss1" -le $((rss0 + 4096))
is "responders all alive" "$(for p in $pids; do kill -0 $p 2>/dev/null && echo y; done | wc -l)" "$(wc -w <<<"$pids")"
wait_idle

# 50 streams open at once, while other requests keep being answered.
echo 5 > "$DIR/sleep"
api -X POST "$URL/refresh" >/dev/null
for i in $(seq 50); do stream "$DIR/m$i" & done
nopen() { for i in $(seq 50); do grep -q '^event: cached' "$DIR/m$i" 2>/dev/null && echo y; done | wc -l; }
wait_for 20 sh -c "[ \$(for i in \$(seq 50); do grep -q '^event: cached' '$DIR'/m\$i 2>/dev/null && echo y; done | wc -l) = 50 ]"
open=$(nopen)
is "50 streams open" "$open" 50
okc=0
for i in $(seq 20); do [ "$(code "$URL/health")" = 200 ] && okc=$((okc + 1)); done
is "/health answers while 50 streams are open" "$okc" 20
is "/fetch-data answers while 50 streams are open" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
wait
done_all=$(for i in $(seq 50); do [ "$(sse_kinds "$DIR/m$i")" = "retry cached progress updated done" ] && echo y; done | wc -l)
is "all 50 streams got updated and done" "$done_all" 50
wait_idle
finish
