#!/bin/bash
# Issue 13: slow and half-sent clients cost nginx memory, disk and connections, bounded per
# address, never every responder thread nor every nginx connection.
#   1. 30 clients that never read a streamed ?refresh=true body (an 8 MB snapshot), against
#      one responder of 16 threads: /health, /status and plain /fetch-data still answer.
#   2. Long work (SSE) gets half of a process's threads, the rest stay for short requests.
#   3. 700 half-sent requests (a body that never comes) from one address, against nginx
#      with 2 × 256 worker_connections: /health still answers other addresses.
#   4. A request whose headers never finish is dropped (client_header_timeout).
. "$(dirname "$0")/../lib.sh"
inst_up slow_clients "workers = 1
threads = 16
sse_heartbeat_s = 1
sse_max_streams = 1000
sync_bin = $TMPBASE/slow_clients/mark-sync
limit_bad_keys_per_min = 1000000
limit_bad_keys_burst = 100000
limit_refresh_per_min = 1000000
limit_refresh_burst = 100000
limit_streams_per_client = 10000
limit_conn_per_client = 40"
printf "#!/bin/sh\\necho run >> %s/sync-runs\\nexec sleep 30\\n" "$DIR" > "$DIR/mark-sync"
chmod +x "$DIR/mark-sync"
# nginx with few connections, so that exhausting them takes hundreds, not thousands, and
# few kept-alive FastCGI connections, as 16 threads need (each idle one parks a thread).
mkdir -p "$DIR/tmpl"
cp "$TOP"/nginx/*.in "$DIR/tmpl/"
sed -i 's/worker_connections [0-9]*;/worker_connections 256;/' "$DIR/tmpl/nginx.conf.in"
sed -i 's/keepalive [0-9]*;/keepalive 2;/' "$DIR/tmpl/pmacache-http.conf.in"
PMACACHE_NGINX_DIR=$DIR/tmpl "$PMACACHE" -c "$CONF" restart >/dev/null
check "nginx runs with 256 connections a worker" grep -q 'worker_connections 256;' "$DIR/run/nginx.conf"
"$GEN" -n 12000 csv > "$DIR/o.csv"
"$SYNC" -c "$CONF" --csv "$DIR/o.csv" 2>/dev/null
size=$(stat -L -c %s "$CACHE/data_cache.json")
check "an 8 MB snapshot ($size bytes)" test "$size" -gt 8000000

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	inst_down
}
trap cleanup EXIT
# A client that sends a request and never reads: one process holding the sockets, for at
# most 60 s. stall N REQUEST
stall() {
	local n=$1 req=$2
	(
		trap '' PIPE # nginx closes the refused ones: the attacker goes on
		for i in $(seq "$n"); do
			exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" 2>/dev/null || continue
			printf '%b' "$req" >&$fd 2>/dev/null
		done
		exec sleep 60
	) &
	pids+=($!)
}
short_ok() {
	[ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' ${2:+--interface $2} -H "X-API-Key: $KEY" "$URL$1")" = 200 ]
}

# 1. Non-reading ?refresh=true clients.
stall 30 "GET /fetch-data?refresh=true HTTP/1.1\r\nHost: x\r\nX-API-Key: $KEY\r\n\r\n"
check "the refreshes were asked for" wait_for 10 test -s "$DIR/sync-runs"
sleep 1 # let them all reach the responder (or not): the checks below must hold either way
for p in /health /status /fetch-data; do
	check "$p answers while 30 clients do not read" short_ok "$p"
done
check "plain /fetch-data sends the whole snapshot meanwhile" cmp -s <(curl -s --max-time 10 -H "X-API-Key: $KEY" "$URL/fetch-data") "$CACHE/data_cache.json"
n=$(grep -c 'buffered to a temporary file' "$DIR/run/log/nginx-error.log")
echo "# nginx buffered $n bodies to temp files"
check "nginx buffered the bodies to temp files ($n)" test "$n" -ge 1

# 2. SSE streams: at most half of the 16 threads. The 9th gets 503; short requests go on.
for i in $(seq 8); do
	curl -sN --max-time 30 -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none" -o "$DIR/s$i" &
	pids+=($!)
done
eight() { [ "$(grep -l '^event: cached' "$DIR"/s? 2>/dev/null | wc -l)" = 8 ]; }
check "eight streams open" wait_for 10 eight
# They end at once when no sync runs; keep them open with a sync that seems to run.
is "a ninth stream: 503 (the process keeps threads for short requests)" \
	"$(code --max-time 5 -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none")" 503
check "/health answers with the streams open" short_ok /health

# 3. Half-sent requests from one address: 700 bodies that never come, to /health (no key
# needed). Each holds an nginx connection until client_body_timeout; past
# limit_conn_per_client (40) they get 429 at once. First the clients above go.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=()
conns() { ss -Htn state established "( sport = :$PORT )" | wc -l; }
quiet() { [ "$(conns)" -lt 10 ]; }
check "the earlier clients are gone" wait_for 40 quiet
before=$(grep -c 'limiting connections by zone "pmacache_conns"' "$DIR/run/log/nginx-error.log")
stall 700 "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
sleep 1 # they are all sent by now, or the attacker is slower than this test: either way
echo "# the attacker holds $(ss -Htn state established "( dport = :$PORT )" | wc -l) connections"
fails=0
for i in 1 2 3 4 5 6; do
	short_ok /health "127.0.0.$((i + 1))" || fails=$((fails + 1))
	sleep 0.5
done
is "/health answers other addresses throughout (6 tries over 3 s)" "$fails" 0
check "and /fetch-data" short_ok /fetch-data 127.0.0.9
limited=$(($(grep -c 'limiting connections by zone "pmacache_conns"' "$DIR/run/log/nginx-error.log") - before))
echo "# $limited of the 700 half-sent requests were refused at once (limit_conn)"
check "hundreds of half-sent requests were refused at once ($limited)" test "$limited" -ge 300

# 4. Headers that never end: nginx drops the connection (client_header_timeout 10 s).
exec {hfd}<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /health HTTP/1.1\r\nHost: x\r\n' >&$hfd
timeout 25 cat <&$hfd >/dev/null 2>&1
rc=$?
check "a request whose headers never end is dropped (bounded wait 25 s, rc $rc)" test "$rc" != 124
exec {hfd}>&-
finish
