#!/bin/bash
# Consecutive real syncs (issue 11: "every step either progresses or fails fast"): the same
# CLI sync from the demo stack (MariaDB + phpMyAdmin, headless Chromium through chromedriver)
# SYNC_LOOPS times in a row. Every one must succeed, publish, and leave no browser and no
# temp folder behind.
#
# make test runs a short loop (5 syncs of 5,000 rows) and only asserts success: tests never
# assert wall-clock timings. make test-long runs the issue's acceptance, 100 syncs of the
# demo's 102,052 rows with SYNC_LOOP_RATIO=2: there, and only there, the slowest sync must
# take at most that many times the median (a hang of any length fails it). The figures
# (median, slowest, ratio) are printed either way.
. "$(dirname "$0")/../lib.sh"
LOOPS=${SYNC_LOOPS:-5}
ROWS=${SYNC_LOOP_ROWS:-5000}
RATIO=${SYNC_LOOP_RATIO:-} # empty: print the ratio, assert nothing about it
STACK=$TMPBASE/e2e-loop-stack
bash "$TOP/scripts/pma-stack.sh" up "$STACK" "$ROWS" >/dev/null || { notok "demo stack up ($ROWS rows)"; finish; }
. "$STACK/stack.env"
stack_down() { bash "$TOP/scripts/pma-stack.sh" down "$STACK" >/dev/null 2>&1; }
inst_up e2e-loop "$(cat "$STACK/pmacache-pma.conf")
sync_timeout = 300"
trap 'inst_down; stack_down' EXIT
# The browser processes this test's syncs started: their HOME, or their arguments, name a
# browser folder in this cache_dir (see test_sync.sh).
our_browsers() {
	local p
	for p in $(pgrep -f chrom); do
		{ tr '\0' '\n' 2>/dev/null < "/proc/$p/environ" | grep -q "^HOME=$CACHE/tmp\.browser\." ||
			tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | grep -qF "$CACHE/tmp.browser."; } && echo "$p"
	done
}

failed=0 published=0 leftovers=0 browsers=0
: > "$DIR/durations"
for i in $(seq "$LOOPS"); do
	etag0=$(api "$URL/status" | jq -r .etag)
	"$SYNC" -c "$CONF" 2>"$DIR/sync-$i.log"
	rc=$?
	st=$(api "$URL/status")
	if [ $rc != 0 ] || [ "$(jq -r .last_sync.result <<<"$st")" != success ]; then
		failed=$((failed + 1))
		echo "sync $i of $LOOPS: exit $rc: $(jq -r .last_sync.error <<<"$st")" >&2
		tail -n 5 "$DIR/sync-$i.log" >&2
	else
		# The sync's own measure of itself, start to finish (status.json's duration_s).
		jq -r .last_sync.duration_s <<<"$st" >> "$DIR/durations"
		[ "$(jq -r .etag <<<"$st")" != "$etag0" ] && [ "$(jq .count <<<"$st")" = "$ROWS" ] &&
			published=$((published + 1))
	fi
	[ "$(ls "$CACHE" | grep -c '^tmp\.')" = 0 ] || leftovers=$((leftovers + 1))
	[ -z "$(our_browsers)" ] || browsers=$((browsers + 1))
done
is "$LOOPS consecutive real syncs of $ROWS rows: none failed" "$failed" 0
is "each published a new snapshot of $ROWS rows" "$published" "$LOOPS"
is "no temp folder left after any of them" "$leftovers" 0
is "no browser process left after any of them" "$browsers" 0
no_zombies "no zombies after $LOOPS syncs"

n=$(wc -l < "$DIR/durations")
if [ "$n" -gt 0 ]; then
	read -r median slowest ratio < <(sort -n "$DIR/durations" | awk '{ d[NR] = $1 }
		END { m = NR % 2 ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2
		      printf "%.3f %.3f %.2f\n", m, d[NR], (m > 0 ? d[NR] / m : 0) }')
	echo "sync loop: $n syncs of $ROWS rows: median ${median}s, slowest ${slowest}s, slowest/median ${ratio}" >&2
	echo "# sync loop: $n syncs of $ROWS rows: median ${median}s, slowest ${slowest}s, slowest/median ${ratio}"
	if [ -n "$RATIO" ]; then
		# The issue's acceptance, in make test-long only (a timing, so never in make test).
		check "the slowest sync takes at most ${RATIO}x the median (${slowest}s / ${median}s = ${ratio})" \
			awk -v r="$ratio" -v max="$RATIO" 'BEGIN { exit !(r <= max) }'
	fi
fi
finish
