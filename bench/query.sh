#!/bin/bash
# bench/query.sh [--quick] [ROWS ...]: the query goals of issue 15, at each table size
# (default 102052 and 1000000; --quick: 20000 only), on loopback, in one run:
#   - a 100-row page (offset, and keyset after=): p99 and requests/s under wrk, 16 connections;
#   - a filtered NDJSON stream selecting about 10 % of the rows, against the client's
#     alternative measured in the same run: the full body with curl, filtered with jq;
#   - changes_since after 1 % of the rows changed: its bytes against the full body's;
#   - the responders' peak RSS (VmHWM) over all of the above and 8 concurrent full scans.
# Prints one line per figure, with its ratio and the goal; asserts nothing (figures only).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
[ "${1:-}" = --quick ] && { QUICK=1; shift; }
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || { [ $QUICK = 1 ] && SIZES=(20000) || SIZES=(102052 1000000); }
WRK_D=10 RUNS=3
[ $QUICK = 1 ] && WRK_D=3
B=$TOP/bench/tmp-query
if [ "$(id -u)" = 0 ] && ! runuser -u www-data -- test -x "$TOP/bench" 2>/dev/null; then B=/tmp/pmacache-bench-query; fi
SYNC=$TOP/sync/pmacache-sync
PMACACHE=$TOP/scripts/pmacache
GEN=$TOP/build/gen-orders
. "$TOP/scripts/proc.sh"
say() { printf '== %s\n' "$*" >&2; }
fig() { printf '%-58s %s\n' "$1" "$2"; }
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%g (%g–%g)", m, a[1], a[NR]}'; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
for t in wrk jq curl python3; do command -v $t >/dev/null || { echo "bench/query.sh needs $t" >&2; exit 1; }; done
[ -x "$GEN" ] && [ -x "$SYNC" ] || { echo "build first: make all build/gen-orders" >&2; exit 1; }

CONF=$B/pmacache.conf
cleanup() { "$PMACACHE" -c "$CONF" stop >/dev/null 2>&1; jobs -p | xargs -r kill 2>/dev/null; }
trap cleanup EXIT
ensure_pmacache_user
wrkrun() { # url -> "rps p99ms non2xx"
	local out
	out=$(wrk -t2 -c16 -d"${WRK_D}s" --latency -H "X-API-Key: $KEY" "$1" 2>&1)
	echo "$(awk '/^Requests\/sec/{print $2}' <<<"$out") $(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out") $(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)"
}
hwm() { local m=0 p v; for p in $(pgrep -f "pmacache-fcgi -c $CONF"); do v=$(awk '/VmHWM/{print $2}' /proc/$p/status 2>/dev/null); [ "${v:-0}" -gt "$m" ] && m=$v; done; awk -v k=$m 'BEGIN{printf "%.1f", k/1024}'; }

for ROWS in "${SIZES[@]}"; do
	rm -rf "$B"; mkdir -p "$B"; chmod a+rx "$B"
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	KEY=$(head -c 24 /dev/urandom | base64 | tr -d '=+/')
	(umask 077; echo "$KEY" > "$B/api_keys")
	secret_file "$B/api_keys"
	cat > "$CONF" <<CONF
listen = 127.0.0.1:$PORT
cache_dir = cache
run_dir = run
api_keys_file = api_keys
sync_bin = $SYNC
workers = 2
min_rows_ratio = 0
limit_refresh_per_min = 1000000
limit_refresh_burst = 100000
limit_streams_per_client = 10000
limit_conn_per_client = 60000
CONF
	say "$ROWS rows: generating and importing"
	"$PMACACHE" -c "$CONF" start >/dev/null || exit 1 # cache_dir, owned as it should be
	"$GEN" -n "$ROWS" csv > "$B/a.csv"
	"$SYNC" -c "$CONF" --csv "$B/a.csv" 2>"$B/sync.err" || { tail -n 3 "$B/sync.err" >&2; exit 1; }
	rm -f "$B/a.csv"
	size=$(stat -L -c %s "$B/cache/data_cache.json")
	H=(-H "X-API-Key: $KEY")
	echo "# $ROWS rows, full body $((size / 1000000)) MB"
	isize=$(($(stat -c %s "$B/cache/current/rows.idx") + $(stat -c %s "$B/cache/current/keys.idx")))
	fig "index beside the snapshot (rows.idx + keys.idx)" "$isize bytes, $(awk -v a="$isize" -v b="$size" 'BEGIN{printf "%.2f %%", 100 * a / b}') of the body   goal ≤ 10 %"

	# 1. A 100-row page.
	curl -s -o /dev/null "${H[@]}" "$URL/fetch-data?limit=100"
	mid=$(curl -s "${H[@]}" "$URL/fetch-data?limit=1&offset=$((ROWS / 2))&fields=id" | jq -r '.data[0].id')
	for kind in offset after; do
		u="$URL/fetch-data?limit=100&offset=$((ROWS / 2))"
		[ $kind = after ] && u="$URL/fetch-data?limit=100&after=$mid"
		R=() P=()
		for i in $(seq $RUNS); do
			set -- $(wrkrun "$u")
			R+=("$1"); P+=("$2")
			[ "$3" = 0 ] || echo "   $3 non-2xx answers" >&2
		done
		fig "100-row page ($kind=) p99, wrk 16 conn" "$(stats "${P[@]}") ms   goal < 5 ms"
		fig "100-row page ($kind=) requests/s" "$(stats "${R[@]}") req/s"
	done

	# The same machine's floor in the same run: /health (no key, no file) under the same load.
	P=()
	for i in $(seq $RUNS); do set -- $(wrkrun "$URL/health"); P+=("$2"); done
	fig "  reference: /health p99, same wrk settings" "$(stats "${P[@]}") ms"

	# 2. A filtered NDJSON stream selecting about 10 % vs curl | jq. The filter: the value of
	# financial_status, currency or fulfillment_status whose share is closest to 10 %.
	curl -s "${H[@]}" "$URL/fetch-data?limit=1000&fields=financial_status,currency,fulfillment_status" |
		jq -r '.data as $d | [("financial_status","currency","fulfillment_status") as $c |
			($d | map(.[$c]) | group_by(.) | map({c: $c, v: .[0], n: length}))[]] |
			map(select(.v != null)) | min_by((.n / ($d | length) - 0.1) | fabs) | "\(.c)\t\(.v)"' > "$B/filter"
	IFS=$'\t' read -r fcol fval < "$B/filter"
	fq="$fcol=$(jq -rn --arg v "$fval" '$v|@uri')"
	Q=() C=() QN=0 CN=0
	for i in $(seq $RUNS); do
		s=$(date +%s.%N)
		QN=$(curl -s "${H[@]}" "$URL/fetch-data?format=ndjson&$fq" | wc -l)
		Q+=("$(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN{print e-s}')")
		s=$(date +%s.%N)
		CN=$(curl -s "${H[@]}" "$URL/fetch-data" | jq -c --arg v "$fval" ".data[] | select(.$fcol == \$v)" | wc -l)
		C+=("$(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN{print e-s}')")
	done
	[ "$QN" = "$CN" ] || echo "   the two selections differ: $QN and $CN rows" >&2
	fig "filtered NDJSON ($fcol=$fval: $QN rows, $((QN * 100 / ROWS)) %)" "$(stats "${Q[@]}") s"
	fig "  curl full body | jq select, same run" "$(stats "${C[@]}") s"
	fig "  ratio" "$(ratio "$(med "${C[@]}")" "$(med "${Q[@]}")")× faster   goal ≥ 10×"

	# 3. changes_since after 1 % of the rows changed (their note).
	etag=$(curl -sI "${H[@]}" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
	curl -s "${H[@]}" "$URL/fetch-data?format=ndjson" | python3 -c '
import json, sys
out = sys.stdout.buffer
def field(v):
    if v is None:
        return b"NULL"
    return b"\"" + v.encode("utf-8", "surrogatepass").replace(b"\"", b"\"\"") + b"\"" if v else b""
for i, line in enumerate(sys.stdin.buffer):
    r = json.loads(line)
    if i == 0:
        out.write(b",".join(field(c) for c in r) + b"\r\n")
    if i % 100 == 7:
        r["note"] = "changed %d" % i
    out.write(b",".join(field(v) for v in r.values()) + b"\r\n")
' > "$B/b.csv"
	s=$(date +%s.%N)
	"$SYNC" -c "$CONF" --csv "$B/b.csv" 2>"$B/sync.err" || tail -n 3 "$B/sync.err" >&2
	rm -f "$B/b.csv"
	cb=$(curl -s -o /dev/null -w '%{size_download}' "${H[@]}" -G --data-urlencode "changes_since=$etag" "$URL/fetch-data")
	nc=$(curl -s "${H[@]}" -G --data-urlencode "changes_since=$etag" "$URL/fetch-data" | jq '.changed | length')
	fig "changes_since after 1 % changed ($nc rows)" "$cb bytes"
	fig "  full body" "$size bytes"
	fig "  share" "$(awk -v a="$cb" -v b="$size" 'BEGIN{printf "%.3f %%", 100 * a / b}')   goal < 1 %"

	# 4. Responder peak RSS: everything above, then 8 concurrent full scans each way.
	fig "responder peak RSS after pages, streams, changes" "$(hwm) MB"
	for c in $(seq 8); do curl -s -o /dev/null "${H[@]}" "$URL/fetch-data?format=ndjson&$fq" & done; wait
	for c in $(seq 8); do curl -s -o /dev/null "${H[@]}" "$URL/fetch-data?format=csv" & done; wait
	fig "responder peak RSS, + 8 × filtered NDJSON, 8 × full CSV" "$(hwm) MB   goal ≤ 10 MB"
	"$PMACACHE" -c "$CONF" stop >/dev/null
done
rm -rf "$B"
