#!/bin/bash
# The seed's three deployment shapes, from their example configs in examples/deploy/ (paths
# and port made this test's; the sync imports a CSV in place of phpMyAdmin, whose path
# tests/e2e covers): A, a periodic worker syncing the shared cache_dir, run as its cron
# line says; B, cron calling POST /refresh with the key read from a file; C, on demand only
# through ?refresh=true.
. "$(dirname "$0")/../lib.sh"
EX=$TOP/examples/deploy
# as_cron USER COMMAND: run a cron line's command as its user (as root), else as we are.
as_cron() {
	if [ "$(id -u)" = 0 ]; then runuser -u "$1" -- sh -c "$2"; else sh -c "$2"; fi
}
cron_user() { [ "$(id -u)" = 0 ] && echo "$PMC_USER" || id -un; }
# shape NAME: start an instance from examples/deploy/NAME.conf.
shape() {
	inst_up "shape-$1"
	sed -e "s|^listen = .*|listen = 127.0.0.1:$PORT|" -e "s|^cache_dir = .*|cache_dir = $CACHE|" \
		-e "s|^run_dir = .*|run_dir = $DIR/run|" -e "s|^log_dir = .*|log_dir = $DIR/log|" \
		-e "s|^api_keys_file = .*|api_keys_file = $DIR/api_keys|" "$EX/$1.conf" > "$CONF"
	grep -q '^limit_bad' "$CONF" || echo "limit_bad_keys_per_min = 1000000" >> "$CONF"
	make_csv_sync
	echo "sync_bin = $DIR/csv-sync" >> "$CONF"
	"$GEN" -n 100 csv > "$DIR/first.csv"
	"$GEN" -n 150 csv > "$DIR/next.data"
	echo "$DIR/next.data" > "$DIR/next.csv"
	chmod 644 "$DIR"/*.csv "$DIR/next.data"
	"$PMACACHE" -c "$CONF" restart >/dev/null || notok "$1: start from the example"
	"$SYNC" -c "$CONF" --csv "$DIR/first.csv" 2>/dev/null
	is "$1: served from the example config" "$(api "$URL/fetch-data" | jq .count)" 100
}

# A: the worker's cron line, run as its user; the API serves what it wrote.
shape a-worker
line=$(grep -v '^#' "$EX/a-worker.cron" | grep pmacache-sync)
is "A: the cron line runs as pmacache" "$(awk '{ print $6 }' <<<"$line")" pmacache
cmd=$(cut -d' ' -f7- <<<"$line" | sed -e "s|/usr/local/bin/pmacache-sync|$SYNC|" -e "s|/etc/pmacache/pmacache.conf|$CONF|" -e 's| >>.*||')
as_cron "$(cron_user)" "$cmd --csv $DIR/next.data" 2>"$DIR/worker.log"
is "A: the worker's sync exits 0" "$?" 0
is "A: the API serves the worker's snapshot" "$(api "$URL/fetch-data" | jq .count)" 150
is "A: /status shows the worker's sync" "$(api "$URL/status" | jq -c '[.last_sync.result, .last_sync.rows]')" '["success",150]'
inst_down

# B: cron's curl with the key in a file.
shape b-cron-refresh
line=$(grep -v '^#' "$EX/b-cron-refresh.cron" | grep curl)
is "B: the cron line runs as pmacache" "$(awk '{ print $6 }' <<<"$line")" pmacache
check "B: no key in the cron line" sh -c "! grep -q '$KEY' '$EX/b-cron-refresh.cron'"
printf 'X-API-Key: %s\n' "$KEY" > "$DIR/refresh.header"
secret "$DIR/refresh.header"
cmd=$(cut -d' ' -f7- <<<"$line" | sed -e "s|/etc/pmacache/refresh.header|$DIR/refresh.header|" -e "s|http://127.0.0.1:8080/|$URL/|" -e 's| >>.*||')
out=$(as_cron "$(cron_user)" "$cmd")
is "B: cron's POST /refresh: triggered" "$out" '{"status":"triggered"}'
check "B: the sync finishes" wait_idle
is "B: the API serves the new snapshot" "$(api "$URL/fetch-data" | jq .count)" 150
inst_down

# C: no cron at all; ?refresh=true.
shape c-on-demand
is "C: no cron file for on-demand" "$(ls "$EX"/c-*.cron 2>/dev/null | wc -l)" 0
b=$(api "$URL/fetch-data?refresh=true")
is "C: ?refresh=true answers at once with the cached data" "$(jq -c '[._info, .count]' <<<"$b")" '["Background refresh triggered",100]'
check "C: the sync finishes" wait_idle
is "C: the next request gets the new snapshot" "$(api "$URL/fetch-data" | jq .count)" 150
finish
