#!/bin/bash
# 200 concurrent GET loops on /fetch-data (plain and gzip) while 20 imports of different
# sizes replace the cache: every body must be complete and one of the published snapshots,
# byte for byte. The loops are curl's own parallel transfers (two curls, 100 connections
# each, round after round): 200 shell loops forking curl would starve the imports on 2 cores.
. "$(dirname "$0")/../lib.sh"
inst_up swap "min_rows_ratio = 0"

"$GEN" -n 120 csv > "$DIR/big.csv"
"$GEN" -n 40 -s 7 csv > "$DIR/small.csv"
"$SYNC" -c "$CONF" --csv "$DIR/big.csv" 2>/dev/null
md5sum < "$CACHE/data_cache.json" | cut -c1-32 > "$DIR/published"

# reader KIND [curl args]: rounds of 100 parallel GETs until the stop file appears; each
# round's bodies are hashed (one md5sum for all) and removed.
reader() {
	local kind=$1 n=0 ext=""
	shift
	[ "$kind" = gzip ] && ext=.gz
	mkdir -p "$DIR/$kind"
	while :; do
		n=$((n + 1))
		curl -s --no-progress-meter -Z --parallel-max 100 -H "X-API-Key: $KEY" "$@" \
			"$URL/fetch-data#[1-100]" -o "$DIR/$kind/r$n.#1$ext"
		[ "$kind" = gzip ] && gunzip -q "$DIR/$kind/r$n".*.gz
		md5sum "$DIR/$kind/r$n".* | cut -c1-32 >> "$DIR/bodies.$kind"
		rm -f "$DIR/$kind/r$n".*
		[ -e "$DIR/stop" ] && break
	done
	echo "$n" > "$DIR/rounds.$kind"
}
reader plain &
reader gzip -H 'Accept-Encoding: gzip' &
imports=0
for i in $(seq 20); do
	f=$DIR/big.csv
	[ $((i % 2)) = 1 ] && f=$DIR/small.csv
	if "$SYNC" -c "$CONF" --csv "$f" 2>/dev/null; then
		imports=$((imports + 1))
		md5sum < "$CACHE/data_cache.json" | cut -c1-32 >> "$DIR/published"
	fi
done
touch "$DIR/stop"
wait
is "all imports succeeded" "$imports" 20
rounds=$(($(cat "$DIR/rounds.plain") + $(cat "$DIR/rounds.gzip")))
cat "$DIR/bodies.plain" "$DIR/bodies.gzip" > "$DIR/bodies"
is "every request gave a body ($rounds rounds of 100)" "$(wc -l < "$DIR/bodies")" $((rounds * 100))
bad=$(grep -cvxF -f "$DIR/published" "$DIR/bodies")
is "every body is one published snapshot" "$bad" 0
seen=$(sort -u "$DIR/bodies" | wc -l)
check "readers saw several snapshots ($seen)" test "$seen" -ge 2
snaps=$(ls "$CACHE/snapshots" | wc -l)
check "old snapshots are pruned ($snaps kept)" test "$snaps" -le 3
is "no temp files left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0
finish
