#!/bin/bash
# Crash safety. kill -9 of the sync at 50 points of a cache replacement; ENOSPC on every write
# and EIO on every fsync in turn (strace fault injection); a truly full disk (a small tmpfs).
# After each: the cache is the old or the new snapshot byte for byte, it is served, and the
# next sync takes the lock at once and leaves no temp file.
. "$(dirname "$0")/../lib.sh"
inst_up crash "min_rows_ratio = 0"
"$GEN" -n 5000 csv > "$DIR/a.csv"
"$GEN" -n 5000 -s 3 csv > "$DIR/b.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
jq -c .data "$CACHE/data_cache.json" | md5sum > "$DIR/data-a"
"$SYNC" -c "$CONF" --csv "$DIR/b.csv" 2>/dev/null
jq -c .data "$CACHE/data_cache.json" | md5sum > "$DIR/data-b"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null

# The cache is intact: valid, complete, one of the two data sets, and served as is.
intact() {
	local d
	d=$(jq -c .data "$CACHE/data_cache.json" 2>/dev/null | md5sum)
	[ "$d" = "$(cat "$DIR/data-a")" ] || [ "$d" = "$(cat "$DIR/data-b")" ] || return 1
	[ "$(jq '.count == (.data|length)' "$CACHE/data_cache.json")" = true ] || return 1
	cmp -s <(api "$URL/fetch-data") "$CACHE/data_cache.json"
}

# 1. kill -9 at 50 points, spread over a whole replacement and a little past it. On a busy
# machine a run may take longer than the one measured: then more points, up to 3 times as late,
# until kills have landed both before and after the swap (at most 100 more).
start=$(date +%s%N)
"$SYNC" -c "$CONF" --csv "$DIR/b.csv" 2>/dev/null
span=$(( ($(date +%s%N) - start) / 1000 )) # µs
bad=0 changed=0 n=0
kill_at() { # POINT OF: kill a sync at POINT/OF of 1.2 spans
	local before f pid
	before=$(md5sum < "$CACHE/data_cache.json")
	f=$DIR/a.csv; [ $(($1 % 2)) = 0 ] && f=$DIR/b.csv
	"$SYNC" -c "$CONF" --csv "$f" 2>/dev/null &
	pid=$!
	sleep "$(awk -v s="$span" -v i="$1" -v n="$2" 'BEGIN { printf "%.6f", 1.2 * s * i / n / 1e6 }')"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	n=$((n + 1))
	intact || { bad=$((bad + 1)); echo "kill -9 point $1/$2: cache not intact" >&2; }
	[ "$before" = "$(md5sum < "$CACHE/data_cache.json")" ] || changed=$((changed + 1))
}
for i in $(seq 50); do kill_at "$i" 50; done
for i in $(seq 100); do
	[ "$changed" -gt 0 ] && [ "$changed" -lt "$n" ] && break
	if [ "$changed" = 0 ]; then kill_at $((50 + i)) 50; else kill_at $((i % 50)) 50; fi
done
is "kill -9 at $n points: the cache is always one whole snapshot, served" "$bad" 0
check "kills landed after the swap ($changed of $n) and before it ($((n - changed)))" \
	test "$changed" -gt 0 -a "$changed" -lt "$n"
st=$(api "$URL/status" | jq -r .last_sync.result)
check "status after kills names a result ($st)" test "$st" = failed -o "$st" = success
t0=$(date +%s%N)
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
is "the next sync takes the lock at once and succeeds" "$?" 0
check "quickly (no stale lock)" test $(( ($(date +%s%N) - t0) / 1000000 )) -lt 5000
# The sync just run removed what the kills left; nothing else writes here.
is "no temp files left after the kills" "$(ls "$CACHE" | grep '^tmp\.' | paste -sd' ' -)" ""

# 2. Fault injection on every write and every fsync, one at a time.
inject() { # syscall errno N -> runs the sync under strace, prints its exit code
	strace -f -qq -o /dev/null -e trace="$1" -e inject="$1:error=$2:when=$3" \
		"$SYNC" -c "$CONF" --csv "$DIR/$4" 2>"$DIR/inj.log" >/dev/null
	echo $?
}
for spec in "write ENOSPC" "pwrite64 ENOSPC" "fsync EIO" "rename EIO"; do
	set -- $spec
	fails=0 wrong=0
	for n in $(seq 1 20); do
		cp "$CACHE/data_cache.json" "$DIR/before.json"
		f=a.csv; [ $((n % 2)) = 0 ] && f=b.csv
		rc=$(inject "$1" "$2" "$n" "$f")
		if [ "$rc" != 0 ]; then
			fails=$((fails + 1))
			cmp -s "$DIR/before.json" "$CACHE/data_cache.json" || { wrong=$((wrong + 1)); echo "$1 #$n: cache changed on failure" >&2; }
			grep -q 'sync failed: ' "$DIR/inj.log" || { wrong=$((wrong + 1)); echo "$1 #$n: no message" >&2; }
			[ "$(ls "$CACHE" | grep -c '^tmp\.')" = 0 ] || { wrong=$((wrong + 1)); echo "$1 #$n: temp files left" >&2; }
			[ "$(api "$URL/status" | jq -r .last_sync.result)" = failed ] || { wrong=$((wrong + 1)); echo "$1 #$n: /status does not say failed" >&2; }
		fi
		intact || { wrong=$((wrong + 1)); echo "$1 #$n: cache not intact" >&2; }
	done
	check "$1 $2: some injections make the sync fail ($fails of 20)" test "$fails" -gt 0
	is "$1 $2: every failure is clean (exit, message, old cache, no temp, /status)" "$wrong" 0
done

# 3. A truly full disk: cache_dir on a small tmpfs.
if [ "$(id -u)" = 0 ] && mkdir -p "$DIR/small" && mount -t tmpfs -o size=6m tmpfs "$DIR/small" 2>/dev/null; then
	trap 'umount "$DIR/small" 2>/dev/null; inst_down' EXIT
	sed "s|^cache_dir = .*|cache_dir = $DIR/small/cache|" "$CONF" > "$DIR/small.conf"
	"$GEN" -n 3000 csv > "$DIR/c.csv"
	"$SYNC" -c "$DIR/small.conf" --csv "$DIR/c.csv" 2>/dev/null
	is "full disk: a first small snapshot fits" "$?" 0
	cp "$DIR/small/cache/data_cache.json" "$DIR/small-before.json"
	"$SYNC" -c "$DIR/small.conf" --csv "$DIR/b.csv" 2>"$DIR/full.log"
	is "full disk: exit 8" "$?" 8
	msg=$(grep 'sync failed' "$DIR/full.log" | head -c 300)
	check "full disk: the message says so ($msg)" grep -q 'No space left on device' "$DIR/full.log"
	check "full disk: the old snapshot is intact" cmp -s "$DIR/small-before.json" "$DIR/small/cache/data_cache.json"
	is "full disk: no temp files left" "$(ls "$DIR/small/cache" | grep -c '^tmp\.')" 0
	umount "$DIR/small"
else
	skip "full disk on a small tmpfs" "no tmpfs mount here (not root, or no permission); injected ENOSPC above still ran"
fi
finish
