#!/bin/bash
# Readers hammer /fetch-data (plain and gzip) while imports of different sizes replace the
# cache: every body must be complete and one of the published snapshots, byte for byte.
. "$(dirname "$0")/../lib.sh"
inst_up swap "min_rows_ratio = 0"

"$GEN" -n 3000 csv > "$DIR/big.csv"
"$GEN" -n 40 -s 7 csv > "$DIR/small.csv"
"$SYNC" -c "$CONF" --csv "$DIR/big.csv" 2>/dev/null
mkdir -p "$DIR/bodies"
md5sum < "$CACHE/data_cache.json" | cut -c1-32 > "$DIR/published"

reader() { # n: loop until the stop file appears, record each body's md5
	local i=0
	while [ ! -e "$DIR/stop" ]; do
		if [ $((i % 2)) = 0 ]; then
			api "$URL/fetch-data" | md5sum | cut -c1-32
		else
			api -H 'Accept-Encoding: gzip' "$URL/fetch-data" | gunzip -c 2>/dev/null | md5sum | cut -c1-32
		fi
		i=$((i + 1))
	done > "$DIR/bodies/$1"
}
for r in 1 2 3 4 5 6 7 8; do reader $r & done

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
total=$(cat "$DIR"/bodies/* | wc -l)
bad=$(cat "$DIR"/bodies/* | grep -cvxF -f "$DIR/published")
check "readers saw many bodies ($total)" test "$total" -ge 40
is "every body is one published snapshot" "$bad" 0
seen=$(cat "$DIR"/bodies/* | sort -u | wc -l)
check "readers saw several snapshots ($seen)" test "$seen" -ge 2
snaps=$(ls "$CACHE/snapshots" | wc -l)
check "old snapshots are pruned ($snaps kept)" test "$snaps" -le 3
is "no temp files left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0
finish
