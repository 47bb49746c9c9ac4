#!/bin/bash
# make bench [QUICK=1]: pmacache against its peers and the physical limit, measured side by
# side in one run on loopback. Prints a table and writes bench/RESULTS.md.
# Every row: the median and min–max over RUNS runs, and the ratio against its peer.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
RUNS=5 ROWS=102052 BIG=1000000 RUNS_BIG=3 WRK_D=10 WRK_RUNS=5
if [ $QUICK = 1 ]; then RUNS=5 ROWS=20000 BIG=100000 RUNS_BIG=3 WRK_D=2 WRK_RUNS=3; fi
# The full sync and the CSV import run at both sizes; BENCH_SYNC_ONLY=1 runs only those.
SIZES="$ROWS $BIG"
B=$TOP/bench/tmp
if [ "$(id -u)" = 0 ] && ! runuser -u www-data -- test -x "$TOP/bench" 2>/dev/null; then B=/tmp/pmacache-bench; fi
SYNC=$TOP/sync/pmacache-sync
PMACACHE=$TOP/scripts/pmacache
GEN=$TOP/build/gen-orders
. "$TOP/scripts/proc.sh"
say() { printf '== %s\n' "$*" >&2; }

# Extra peers: Miller, Flask + gunicorn, GNU time (Debian packages).
if [ "$(id -u)" = 0 ]; then
	need=""
	for p in miller python3-flask gunicorn time wrk; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"
	done
	[ -z "$need" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >/dev/null
fi

# stats v...: "median min max" (numbers, any order)
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%g %g %g\n", m, a[1], a[NR]}'; }
med() { stats "$@" | cut -d' ' -f1; }
# Wall clock to the microsecond (bash's EPOCHREALTIME, read without a fork; /usr/bin/time's %e
# has only 10 ms, a tenth of an import of the demo's table): t0=${EPOCHREALTIME/,/.} before,
# t1 the same after, then secs "$t0" "$t1".
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }
fmt() { # "median min max" unit -> "m (lo–hi) unit"
	set -- $1 "$2"
	printf '%s (%s–%s) %s' "$1" "$2" "$3" "$4"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
meets() { # value op goal
	awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? v <= g : (op == ">=") ? v >= g : v < g; print ok ? "yes" : "**NO**" }'
}
ROWS_MD=()
row() { ROWS_MD+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); printf '%-44s %-30s %-26s %-8s %s %s\n' "$1" "$2" "$4" "$5" "$6" "$7" >&2; }

rm -rf "$B"; mkdir -p "$B"
cleanup() {
	[ -f "$B/gunicorn.pid" ] && kill "$(cat "$B/gunicorn.pid")" 2>/dev/null
	kill_slow 2>/dev/null
	"$PMACACHE" -c "$B/pmacache.conf" stop >/dev/null 2>&1
	bash "$TOP/scripts/pma-stack.sh" down "$B/stack" >/dev/null 2>&1
	jobs -p | xargs -r kill 2>/dev/null
}
trap cleanup EXIT

kill_slow() { [ -f "$B/slow-sync.pid" ] && kill "$(cat "$B/slow-sync.pid")" 2>/dev/null; rm -f "$B/slow-sync.pid"; sleep 0.2; }
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
KEY=$(head -c 24 /dev/urandom | base64 | tr -d '=+/')
ensure_pmacache_user
# Started as root, the responders and the syncs run as pmacache: the folder is theirs.
[ "$(id -u)" = 0 ] && chown pmacache:pmacache "$B"
(umask 077; echo "$KEY" > "$B/api_keys")
secret_file "$B/api_keys"
# A sync that only holds the lock (fd 3) while the SSE rows run; killed by its pid file.
# (pmacache start's key check, --check-keys, goes to the real sync.)
cat > "$B/slow-sync" <<SH
#!/bin/sh
case " \$* " in *" --check-keys "*) exec "$SYNC" "\$@" ;; esac
echo \$\$ > "$B/slow-sync.pid"
exec sleep 120
SH
chmod +x "$B/slow-sync"
cat > "$B/pmacache.conf" <<CONF
listen = 127.0.0.1:$PORT
cache_dir = cache
run_dir = run
api_keys_file = api_keys
sync_bin = $B/slow-sync
workers = 2
threads = 128
sse_max_streams = 200
min_rows_ratio = 0
# Every benchmark client is 127.0.0.1: lift the per-client limits (they are tested in
# tests/integration/test_limits.sh).
limit_refresh_per_min = 1000000
limit_refresh_burst = 100000
limit_streams_per_client = 10000
limit_conn_per_client = 60000
CONF

say "data: $ROWS orders"
"$GEN" -n "$ROWS" csv > "$B/orders.csv"
"$SYNC" -c "$B/pmacache.conf" --csv "$B/orders.csv" 2>/dev/null || { echo "import failed" >&2; exit 1; }
snap=$(readlink -f "$B/cache/data_cache.json")
size=$(stat -c %s "$snap")
echo '{"status":"healthy"}' > "$B/small.json"
mkdir -p "$B/run"
cat > "$B/run/local-bench.conf" <<CONF
location = /static/data_cache.json { alias $snap; default_type application/json; }
location = /static/small.json { alias $B/small.json; default_type application/json; }
CONF
chmod -R a+rX "$B"
secret_file "$B/api_keys" # readable by the responders only: a world-readable key file is refused
"$PMACACHE" -c "$B/pmacache.conf" start >/dev/null || exit 1
H=(-H "X-API-Key: $KEY")
tcurl() { curl -s -o /dev/null -w '%{time_total}\n' "$@"; }

if [ "${BENCH_SYNC_ONLY:-0}" != 1 ]; then
say "1-2. full body: pmacache, nginx static, Flask"
export BENCH_CACHE_FILE=$snap BENCH_KEY_FILE=$B/api_keys
FPORT=$(free_port)
gunicorn -w 2 -b "127.0.0.1:$FPORT" --chdir "$TOP/bench" --timeout 120 --daemon --pid "$B/gunicorn.pid" \
	--error-logfile "$B/gunicorn.log" flask_peer:app
for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$FPORT/" && break; sleep 0.1; done
tcurl "${H[@]}" "$URL/fetch-data" >/dev/null; tcurl "$URL/static/data_cache.json" >/dev/null
tcurl "${H[@]}" "http://127.0.0.1:$FPORT/fetch-data" >/dev/null
P=() S=() F=()
# The full-body row is noisy on a shared machine: twice the runs, interleaved.
for i in $(seq $((RUNS * 2 + 1))); do
	P+=("$(tcurl "${H[@]}" "$URL/fetch-data")")
	S+=("$(tcurl "$URL/static/data_cache.json")")
done
for i in $(seq $RUNS); do
	F+=("$(tcurl "${H[@]}" "http://127.0.0.1:$FPORT/fetch-data")")
done
fsize=$(curl -s "${H[@]}" "http://127.0.0.1:$FPORT/fetch-data" | wc -c)
mb=$(awk -v s="$size" 'BEGIN{printf "%.0f MB", s/1e6}')
r1=$(ratio "$(med "${P[@]}")" "$(med "${S[@]}")")
row "1. /fetch-data, full body ($mb)" "$(fmt "$(stats "${P[@]}")" s)" "nginx static file" "$(fmt "$(stats "${S[@]}")" s)" "$r1×" "≤ 1.15×" "$(meets "$r1" "<=" 1.15)"
r2=$(ratio "$(med "${F[@]}")" "$(med "${P[@]}")")
row "2. /fetch-data vs the seed's design" "$(fmt "$(stats "${P[@]}")" s)" "Flask+gunicorn, json.load+jsonify ($((fsize / 1000000)) MB)" "$(fmt "$(stats "${F[@]}")" s)" "${r2}× faster" "≥ 25× faster" "$(meets "$r2" ">=" 25)"
kill "$(cat "$B/gunicorn.pid")"; rm -f "$B/gunicorn.pid"

say "3. 304 and gzip"
etag=$(curl -sI "${H[@]}" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
N=() G=() GS=()
for i in $(seq $RUNS); do
	N+=("$(tcurl "${H[@]}" -H "If-None-Match: $etag" "$URL/fetch-data")")
	G+=("$(tcurl "${H[@]}" -H 'Accept-Encoding: gzip' "$URL/fetch-data")")
done
code304=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${H[@]}" -H "If-None-Match: $etag" "$URL/fetch-data")
gz=$(curl -s "${H[@]}" -H 'Accept-Encoding: gzip' "$URL/fetch-data" | wc -c)
row "3a. /fetch-data If-None-Match (${code304% *}, ${code304#* } B body)" "$(fmt "$(stats "${N[@]}")" s)" "full body" "$(fmt "$(stats "${P[@]}")" s)" "$(ratio "$(med "${P[@]}")" "$(med "${N[@]}")")× faster" "304, no body" "$([ "${code304% *}" = 304 ] && echo yes || echo '**NO**')"
row "3b. /fetch-data gzip ($((gz / 1000)) kB of $((size / 1000)) kB)" "$(fmt "$(stats "${G[@]}")" s)" "full body" "$(fmt "$(stats "${P[@]}")" s)" "$(ratio "$size" "$gz")× fewer bytes" "precompressed" "yes"

say "4. /health and /status with wrk (2 threads, 64 connections, ${WRK_D}s × $WRK_RUNS)"
wrkrun() { # url [header] -> "rps p99ms"
	local out
	out=$(wrk -t2 -c64 -d"${WRK_D}s" --latency "${@:2}" "$1" 2>&1)
	local rps p99 non2xx
	rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
	p99=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
	non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
	echo "$rps $p99 ${non2xx:-0}"
}
for target in health status static; do
	declare -a RPS=() P99=()
	for i in $(seq $WRK_RUNS); do
		case $target in
		health) set -- $(wrkrun "$URL/health") ;;
		status) set -- $(wrkrun "$URL/status" -H "X-API-Key: $KEY") ;;
		static) set -- $(wrkrun "$URL/static/small.json") ;;
		esac
		RPS+=("$1"); P99+=("$2")
		[ "${3:-0}" = 0 ] || echo "   $target: $3 non-2xx answers" >&2
	done
	eval "RPS_$target=(\"\${RPS[@]}\"); P99_$target=(\"\${P99[@]}\")"
done
for target in health status; do
	eval "r=(\"\${RPS_$target[@]}\"); p=(\"\${P99_$target[@]}\")"
	rr=$(ratio "$(med "${r[@]}")" "$(med "${RPS_static[@]}")")
	row "4. /$target requests/s (p99 $(med "${p[@]}") ms)" "$(fmt "$(stats "${r[@]}")" req/s)" "nginx static small file (p99 $(med "${P99_static[@]}") ms)" "$(fmt "$(stats "${RPS_static[@]}")" req/s)" "$rr×" "≥ 0.5×" "$(meets "$rr" ">=" 0.5)"
done

say "5. /health p99 with 100 SSE streams open"
curl -s -X POST "${H[@]}" "$URL/refresh" >/dev/null   # a sync that holds the lock: streams stay open
mkdir -p "$B/sse"
for i in $(seq 100); do curl -sN "${H[@]}" "$URL/fetch-data?stream=true&payload=none" -o "$B/sse/$i" & done
for i in $(seq 100); do
	open=$(grep -l '^event: cached' "$B"/sse/* 2>/dev/null | wc -l)
	[ "$open" -ge 100 ] && break; sleep 0.1
done
declare -a Q=() Q0=()
for i in $(seq $WRK_RUNS); do set -- $(wrkrun "$URL/health"); Q+=("$2"); done
row "5. /health p99 with $open SSE streams open" "$(fmt "$(stats "${Q[@]}")" ms)" "/health p99, no streams" "$(fmt "$(stats "${P99_health[@]}")" ms)" "$(ratio "$(med "${Q[@]}")" "$(med "${P99_health[@]}")")×" "< 20 ms" "$(meets "$(med "${Q[@]}")" "<" 20)"
kill_slow
wait 2>/dev/null

say "6. responder peak RSS serving the cache to 8 clients"
"$PMACACHE" -c "$B/pmacache.conf" restart >/dev/null
hwm() { local m=0 p v; for p in $(pgrep -f "pmacache-fcgi -c $B/pmacache.conf"); do v=$(awk '/VmHWM/{print $2}' /proc/$p/status); [ "$v" -gt "$m" ] && m=$v; done; echo $m; }
X=() Y=()
for i in $(seq $RUNS); do
	for c in $(seq 8); do curl -s -o /dev/null "${H[@]}" "$URL/fetch-data" & done; wait
	X+=("$(awk -v k="$(hwm)" 'BEGIN{printf "%.1f", k/1024}')")
done
for i in $(seq $RUNS); do
	# refresh=true: the responder streams the body itself (with "_info").
	for c in $(seq 8); do curl -s -o /dev/null "${H[@]}" "$URL/fetch-data?refresh=true" & done; wait
	Y+=("$(awk -v k="$(hwm)" 'BEGIN{printf "%.1f", k/1024}')")
	kill_slow
done
row "6a. responder peak RSS, 8 × /fetch-data" "$(fmt "$(stats "${X[@]}")" MB)" "goal" "10 MB" "$(ratio "$(med "${X[@]}")" 10)×" "≤ 10 MB" "$(meets "$(med "${X[@]}")" "<=" 10)"
row "6b. responder peak RSS, 8 × streamed (refresh=true)" "$(fmt "$(stats "${Y[@]}")" MB)" "goal" "10 MB" "$(ratio "$(med "${Y[@]}")" 10)×" "≤ 10 MB" "$(meets "$(med "${Y[@]}")" "<=" 10)"

fi # BENCH_SYNC_ONLY

# Sections 7 and 8 run at each size of SIZES, side by side: the demo's table and a large one.
for N in $SIZES; do
	nice=$(printf "%'d" "$N")
	say "7. CSV -> JSON at $nice rows: pmacache-sync --csv, Miller$([ "$N" = "$ROWS" ] && echo ", Python csv+json")"
	csv=$B/orders.csv
	if [ "$N" != "$ROWS" ]; then csv=$B/orders-$N.csv; "$GEN" -n "$N" csv > "$csv"; fi
	csvmb=$(awk -v s="$(stat -c %s "$csv")" 'BEGIN{printf "%.0f MB", s/1e6}')
	T=() M=() TM=() MM=() Y=() YM=() C=() failed=0
	kill_slow
	for i in $(seq $RUNS); do
		t0=${EPOCHREALTIME/,/.}
		if ! { /usr/bin/time -f '%e %M' "$SYNC" -c "$B/pmacache.conf" --csv "$csv" --force 2>&1 >/dev/null; } > "$B/csv.log"; then
			echo "   --csv failed: $(grep -m1 ' error: ' "$B/csv.log")" >&2
			failed=$((failed + 1))
			continue
		fi
		t1=${EPOCHREALTIME/,/.}
		T+=("$(secs "$t0" "$t1")")
		set -- $(tail -n1 "$B/csv.log")
		TM+=("$(awk -v k="$2" 'BEGIN{printf "%.1f", k/1024}')")
		C+=("$(awk '/ phase convert /{if(c=="")c=$NF} / phase swap /{s=$NF} END{gsub(/[()s]/,"",c); gsub(/[()s]/,"",s); printf "%.3f", s-c}' "$B/csv.log")")
		t0=${EPOCHREALTIME/,/.}
		set -- $( { /usr/bin/time -f '%e %M' mlr --icsv --ojson cat "$csv" > "$B/mlr.json"; } 2>&1 | tail -n1)
		t1=${EPOCHREALTIME/,/.}
		M+=("$(secs "$t0" "$t1")"); MM+=("$(awk -v k="$2" 'BEGIN{printf "%.1f", k/1024}')")
		rm -f "$B/mlr.json"
		if [ "$N" = "$ROWS" ]; then
			t0=${EPOCHREALTIME/,/.}
			set -- $( { /usr/bin/time -f '%e %M' python3 "$TOP/bench/csv2json.py" "$csv" "$B/py.json"; } 2>&1 | tail -n1)
			t1=${EPOCHREALTIME/,/.}
			Y+=("$(secs "$t0" "$t1")"); YM+=("$(awk -v k="$2" 'BEGIN{printf "%.1f", k/1024}')")
			rm -f "$B/py.json"
		fi
	done
	# The query index's cost (issue 15): imports with it, then the same without it
	# (--no-index), both one after the other with nothing between (the imports above alternate
	# with Miller, whose own 100s of MB of output the disk is still writing): the ones with
	# it each diff against two indexed snapshots of their own size, as an hourly sync does.
	TI=() TN=()
	cur=$B/cache/current
	chsz=$(du -sb "$cur/changes" 2>/dev/null | cut -f1)
	isz=$(($(stat -c %s "$cur/rows.idx" 2>/dev/null || echo 0) + $(stat -c %s "$cur/keys.idx" 2>/dev/null || echo 0) + ${chsz:-0}))
	bsz=$(stat -c %s "$cur/data_cache.json")
	failed_ix=0
	for noidx in "" --no-index; do
		for i in $(seq $RUNS); do
			sleep 1 # a new second: the next import never waits for one (one snapshot per second)
			t0=${EPOCHREALTIME/,/.}
			if "$SYNC" -c "$B/pmacache.conf" --csv "$csv" --force $noidx >/dev/null 2>"$B/csv.log"; then
				t1=${EPOCHREALTIME/,/.}
				if [ -n "$noidx" ]; then TN+=("$(secs "$t0" "$t1")"); else TI+=("$(secs "$t0" "$t1")"); fi
			else
				echo "   --csv $noidx failed: $(grep -m1 ' error: ' "$B/csv.log")" >&2
				failed_ix=$((failed_ix + 1))
			fi
		done
	done
	[ "${#TN[@]}" -gt 0 ] || TN=(0)
	[ "${#TI[@]}" -gt 0 ] || TI=(0)
	goal=10; [ "$N" -ge 1000000 ] && goal=6
	[ "${#T[@]}" -gt 0 ] || T=(0) C=(0) TM=(0)
	r7=$(ratio "$(med "${M[@]}")" "$(med "${T[@]}")")
	met=$(meets "$r7" ">=" $goal)
	[ "$failed" = 0 ] || met="**NO** ($failed of $RUNS imports failed)"
	row "7a. $nice rows: CSV→JSON ($csvmb; pmacache incl. gzip copy + fsync)" "$(fmt "$(stats "${T[@]}")" s)" "Miller mlr --icsv --ojson" "$(fmt "$(stats "${M[@]}")" s)" "${r7}× faster" "≥ ${goal}× faster" "$met"
	row "7a'. $nice rows: the convert phase alone (the sync's own phase times)" "$(fmt "$(stats "${C[@]}")" s)" "Miller mlr --icsv --ojson" "$(fmt "$(stats "${M[@]}")" s)" "$(ratio "$(med "${M[@]}")" "$(med "${C[@]}")")× faster" "" ""
	ix_pct=$(awk -v a="$(med "${TI[@]}")" -v b="$(med "${TN[@]}")" 'BEGIN{if (b > 0) printf "%.1f", 100 * (a - b) / b; else print "n/a"}')
	# a failed import is no figure: with every indexed one failed, TI's 0 s reads as -100 %
	met_ix=$(meets "$ix_pct" "<=" 20)
	[ "$failed_ix" = 0 ] || met_ix="**NO** ($failed_ix of $((2 * RUNS)) imports failed)"
	row "7d. $nice rows: the query index's build cost (import with it vs --no-index, back to back)" "$(fmt "$(stats "${TI[@]}")" s)" "--no-index" "$(fmt "$(stats "${TN[@]}")" s)" "+${ix_pct} %" "≤ +20 %" "$met_ix"
	ix_sz=$(awk -v a="$isz" -v b="$bsz" 'BEGIN{printf "%.2f", 100 * a / b}')
	row "7e. $nice rows: the index's size (rows.idx + keys.idx + changes/)" "$(awk -v a="$isz" 'BEGIN{printf "%.1f MB", a/1e6}')" "the body" "$(awk -v b="$bsz" 'BEGIN{printf "%.1f MB", b/1e6}')" "+${ix_sz} %" "≤ +10 %" "$(meets "$ix_sz" "<=" 10)"
	if [ "$N" = "$ROWS" ]; then
		row "7b. $nice rows: CSV→JSON vs Python csv+json" "$(fmt "$(stats "${T[@]}")" s)" "Python one-pass" "$(fmt "$(stats "${Y[@]}")" s)" "$(ratio "$(med "${Y[@]}")" "$(med "${T[@]}")")× faster" "" ""
		row "7c. $nice rows: CSV→JSON peak RSS" "$(fmt "$(stats "${TM[@]}")" MB)" "Miller / Python" "$(med "${MM[@]}") MB / $(med "${YM[@]}") MB" "$(ratio "$(med "${MM[@]}")" "$(med "${TM[@]}")")× less than Miller" "≤ 16 MB" "$(meets "$(med "${TM[@]}")" "<=" 16)"
	else
		row "7c. $nice rows: CSV→JSON peak RSS" "$(fmt "$(stats "${TM[@]}")" MB)" "Miller" "$(med "${MM[@]}") MB" "$(ratio "$(med "${MM[@]}")" "$(med "${TM[@]}")")× less than Miller" "≤ 16 MB" "$(meets "$(med "${TM[@]}")" "<=" 16)"
		rm -f "$csv"
	fi
done

# phases LOG: "name seconds" per phase, from the log's "phase NAME ... (12.34s)" lines (the
# first of each) to the next phase, the last one to "sync done".
phases() {
	awk '/ phase /{n=$5; t=$NF; gsub(/[()s]/,"",t); if(!(n in s)){s[n]=t; o[++k]=n}} / sync done:/{d=$NF; gsub(/s/,"",d)} END{for(i=1;i<=k;i++){e=(i<k)?s[o[i+1]]:d; printf "%s %.2f\n", o[i], e-s[o[i]]}}' "$1"
}
# sync_runs NAME CONF COUNT: COUNT full syncs; their times into SYNC_T, phases into PH_NAME_phase.
sync_runs() {
	local name=$1 conf=$2 n=$3 i p t
	SYNC_T=() SYNC_FAILED=0
	for i in $(seq "$n"); do
		"$SYNC" -c "$conf" --force 2>"$B/sync.log" || { echo "   sync failed: $(tail -n1 "$B/sync.log")" >&2; SYNC_FAILED=$((SYNC_FAILED + 1)); continue; }
		SYNC_T+=("$(awk '/ sync done:/{d=$NF; gsub(/s/,"",d); print d}' "$B/sync.log")")
		while read -r p t; do eval "PH_${name}_$p+=\" $t\""; done < <(phases "$B/sync.log")
		# the peer, interleaved with the syncs (the same load on the machine)
		[ "$name" = http ] && PEER_T+=("$(bash "$TOP/bench/curl-export.sh" "$PMA_URL" "$PMA_USER" "$PMA_PASSWORD_FILE" "$PMA_DB" "$PMA_TABLE" "$B/peer.csv" | awk '{print $6}')")
	done
	rm -f "$B/peer.csv"
}
phase_row() { # label name
	local p v parts=""
	for p in starting login export download convert swap; do
		eval "v=\${PH_$2_$p:-}"
		[ -n "$v" ] && parts="$parts $p $(med $v)s,"
	done
	row "$1" "${parts%,}" "" "" "" "" ""
}

"$PMACACHE" -c "$B/pmacache.conf" stop >/dev/null
for N in $SIZES; do
	nice=$(printf "%'d" "$N")
	say "8. full sync of $nice rows from the demo phpMyAdmin through headless Chromium, and the plain-curl peer"
	n=$RUNS; [ "$N" -ge 1000000 ] && n=$RUNS_BIG
	if bash "$TOP/scripts/pma-stack.sh" up "$B/stack" "$N" >/dev/null; then
		eval "$(grep '^PMA_' "$B/stack/stack.env")" # (its ROWS is not ours)
		{ cat "$B/pmacache.conf"; cat "$B/stack/pmacache-pma.conf"; } > "$B/sync-http.conf"
		sed 's/^min_rows_ratio = .*/&\nexport_via = browser/' "$B/sync-http.conf" > "$B/sync-browser.conf"
		"$SYNC" -c "$B/sync-http.conf" --force 2>/dev/null # warm-up: php-fpm's opcache
		PEER_T=()
		unset "${!PH_http_@}" "${!PH_browser_@}"
		sync_runs http "$B/sync-http.conf" "$n"
		TH=("${SYNC_T[@]}") FH=$SYNC_FAILED
		sync_runs browser "$B/sync-browser.conf" "$n"
		TB=("${SYNC_T[@]}") FB=$SYNC_FAILED
		[ "${#TH[@]}" -gt 0 ] || TH=(0)
		[ "${#TB[@]}" -gt 0 ] || TB=(0)
		[ "${#PEER_T[@]}" -gt 0 ] || PEER_T=(0)
		r8=$(ratio "$(med "${TH[@]}")" "$(med "${PEER_T[@]}")")
		if [ "$N" -ge 1000000 ]; then goal="≤ 1.5×" met=$(meets "$r8" "<=" 1.5); else goal="" met=""; fi
		[ "$FH" = 0 ] || met="**NO** ($FH of $n syncs failed)"
		[ "$FB" = 0 ] || echo "   export_via = browser: $FB of $n syncs failed" >&2
		row "8a. $nice rows: full sync, export_via = http (browser start to swapped cache)" "$(fmt "$(stats "${TH[@]}")" s)" "plain curl login + export POST to a file (bench/curl-export.sh)" "$(fmt "$(stats "${PEER_T[@]}")" s)" "${r8}×" "$goal" "$met"
		row "8b. $nice rows: full sync, export_via = browser (its own download)" "$(fmt "$(stats "${TB[@]}")" s)" "export_via = http" "$(fmt "$(stats "${TH[@]}")" s)" "$(ratio "$(med "${TB[@]}")" "$(med "${TH[@]}")")×" "" "$([ "$FB" = 0 ] || echo "**NO** ($FB of $n syncs failed)")"
		[ "$N" = "$ROWS" ] && row "8c. $nice rows: full sync, export_via = http" "$(fmt "$(stats "${TH[@]}")" s)" "the seed's budget" "120–300 s" "$(ratio 120 "$(med "${TH[@]}")")× faster" "< 8 s" "$(meets "$(med "${TH[@]}")" "<" 8)"
		phase_row "8d. $nice rows: phases, export_via = http (median; download: to the first byte; convert: the body streamed and converted)" http
		phase_row "8e. $nice rows: phases, export_via = browser (median)" browser
	else
		row "8. $nice rows: full sync" "demo stack did not start" "" "" "" "" "**NO**"
	fi
	bash "$TOP/scripts/pma-stack.sh" down "$B/stack" >/dev/null 2>&1
	rm -rf "$B/stack"
done

cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
{
	echo "# pmacache benchmark results"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB, Debian $(cat /etc/debian_version)."
	echo "Mode: $([ $QUICK = 1 ] && echo quick || echo full), $ROWS orders ($BIG in the rows that say so), $RUNS runs per row ($RUNS_BIG per full sync at $BIG rows; wrk: $WRK_RUNS × ${WRK_D}s, 2 threads, 64 connections)."
	[ -n "${BENCH_NOTE:-}" ] && echo "$BENCH_NOTE"
	echo "Every figure is the median (min–max); the ratio compares medians measured in this same run."
	echo
	echo "| measurement | pmacache | peer | peer figure | ratio | goal | met |"
	echo "|---|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS_MD[@]}"
} > "$TOP/bench/RESULTS.md"
echo >&2
# The query goals (issue 15) at the same sizes: bench/query.sh runs its own instance.
say "9. queries over the snapshot at $SIZES rows (bench/query.sh)"
qargs=(); [ $QUICK = 1 ] && qargs=(--quick)
if qout=$(bash "$TOP/bench/query.sh" "${qargs[@]}" $SIZES); then qstatus=""; else qstatus=" (**bench/query.sh failed**)"; fi
{
	echo
	echo "## Queries over the snapshot (bench/query.sh)$qstatus"
	echo
	echo '```'
	printf '%s\n' "$qout"
	echo '```'
} >> "$TOP/bench/RESULTS.md"
cat "$TOP/bench/RESULTS.md"
