#!/bin/bash
# Hostile input to the sync (issue 13): memory bounded by max_field_bytes whatever the input,
# --csv refusing what is not a regular file, stop and sync_timeout in every read, a wide table
# (meta.json over 16 KiB) served everywhere, the shrink guard failing closed, /status valid JSON
# after a long error, snapshot times that never run ahead of the clock, a nearly full disk.
. "$(dirname "$0")/../lib.sh"
inst_up hostile "sync_timeout = 5"
"$GEN" -n 200 csv > "$DIR/a.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null || notok "first import"
before=$(md5sum < "$CACHE/data_cache.json")
unchanged() { [ "$(md5sum < "$CACHE/data_cache.json")" = "$before" ]; }
rss_kb() { awk '/^RSS / { print $2 }' "$1"; }

# --- 1. Bounded memory --------------------------------------------------------------------
# /dev/zero as a path: refused at once (not a regular file).
timeout 20 "$SYNC" -c "$CONF" --csv /dev/zero 2>"$DIR/err"
is "--csv /dev/zero: exit 2" "$?" 2
check "--csv /dev/zero: says it is not a regular file" grep -q '/dev/zero: not a regular file' "$DIR/err"
# /dev/zero on standard input: refused by max_field_bytes, in constant memory.
/usr/bin/time -f 'RSS %M' timeout 60 "$SYNC" -c "$CONF" --csv - </dev/zero 2>"$DIR/err"
is "--csv - </dev/zero: exit 7" "$?" 7
check "--csv - </dev/zero: the header row is over max_field_bytes" grep -q '(stdin):1:1: the header row is longer than max_field_bytes' "$DIR/err"
r=$(rss_kb "$DIR/err")
check "--csv - </dev/zero: peak RSS ${r} kB, under 64 MB" test "${r:-999999}" -lt 65536
# A 50 MB field of control bytes (each escaped to 6 bytes of JSON): refused by default ...
{ printf '"id","blob"\n"1","'; head -c 50000000 /dev/zero | tr '\0' '\001'; printf '"\n'; } > "$DIR/field.csv"
/usr/bin/time -f 'RSS %M' "$SYNC" -c "$CONF" --csv "$DIR/field.csv" --force 2>"$DIR/err"
is "a 50 MB field: exit 7 with the default max_field_bytes" "$?" 7
check "a 50 MB field: refused with file:line:column" grep -q "field.csv:2:5: a field longer than max_field_bytes (16777216 bytes)" "$DIR/err"
r=$(rss_kb "$DIR/err")
check "a 50 MB field, refused: peak RSS ${r} kB, under 64 MB" test "${r:-999999}" -lt 65536
check "a refused field leaves the cache as it was" unchanged
# ... and accepted under a higher limit, still in constant memory (it was 600 MB and more).
sed 's/^max_field_bytes.*//' "$CONF" > "$DIR/big.conf"
echo "max_field_bytes = 64M" >> "$DIR/big.conf"
/usr/bin/time -f 'RSS %M' "$SYNC" -c "$DIR/big.conf" --csv "$DIR/field.csv" --force 2>"$DIR/err"
is "a 50 MB field with max_field_bytes = 64M: imported" "$?" 0
r=$(rss_kb "$DIR/err")
echo "# peak RSS of --csv with a 50 MB field of control bytes: ${r} kB"
check "a 50 MB field, imported: peak RSS ${r} kB, under 64 MB" test "${r:-999999}" -lt 65536
# Whole: the envelope, 50,000,000 times \u0001, the end (jq would need GBs for this file).
env=$(head -c 300 "$CACHE/data_cache.json" | grep -o '^.*"blob":"')
is "the 50 MB field arrives whole" "$(stat -L -c %s "$CACHE/data_cache.json")" $(( ${#env} + 50000000 * 6 + 4 ))
is "... and ends where it should" "$(tail -c 10 "$CACHE/data_cache.json")" '\u0001"}]}'
rm -f "$DIR/field.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" --force 2>/dev/null
before=$(md5sum < "$CACHE/data_cache.json")

# The header check is a sort: 200,000 columns, the last one a repeat (quadratic took 4.8 s
# for 50,000; this many would take over a minute).
awk 'BEGIN { for (i = 1; i <= 200000; i++) printf "%s\"c%d\"", (i > 1 ? "," : ""), i; print ",\"c7\"" }' > "$DIR/wide.csv"
timeout 60 "$SYNC" -c "$CONF" --csv "$DIR/wide.csv" --force 2>"$DIR/err"
is "200,001 columns with a repeat: exit 7 (within 60 s)" "$?" 7
col=$(( $(awk 'BEGIN { n = 0; for (i = 1; i <= 200000; i++) n += length("c" i) + 3; print n }') + 1 ))
check "the repeat is named at line 1, column $col" grep -q "wide.csv:1:$col: duplicate column name" "$DIR/err"

# --- 2. Only regular files; stop and sync_timeout in every read -----------------------------
mkfifo "$DIR/fifo"
timeout 20 "$SYNC" -c "$CONF" --csv "$DIR/fifo" 2>"$DIR/err"
is "--csv FIFO: refused at once, exit 2 (not left waiting for a writer)" "$?" 2
check "--csv FIFO: the message points to --csv -" grep -q 'not a regular file (give --csv - to read a pipe' "$DIR/err"
# A pipe whose writer never closes: sync_timeout (5 s) ends it with exit 10, lock released.
sleep 300 > "$DIR/fifo" &
writer=$!
timeout 60 "$SYNC" -c "$CONF" --csv - <"$DIR/fifo" 2>"$DIR/err"
is "a pipe that never ends: exit 10 at sync_timeout" "$?" 10
kill $writer 2>/dev/null
wait $writer 2>/dev/null
check "a pipe that never ends: the message says sync_timeout" grep -q 'sync_timeout (5 s) passed: (stdin): stopped after 0 bytes' "$DIR/err"
is "after the timeout: /status says failed" "$(api "$URL/status" | jq -r .last_sync.result)" failed
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>/dev/null
is "after the timeout: the lock is free, the next sync runs" "$?" 0
before=$(md5sum < "$CACHE/data_cache.json")
# SIGTERM while an endless stream is read at full speed.
{ echo '"n"'; yes '"1"'; } | "$SYNC" -c "$CONF" --csv - --force 2>"$DIR/err" &
for i in $(seq 100); do
	[ "$(jq -r .phase "$CACHE/progress.json" 2>/dev/null)" = convert ] && break
	sleep 0.1
done
sp=$(pgrep -f "pmacache-sync -c $CONF --csv -" | head -n1)
kill -TERM "$sp" 2>/dev/null
for i in $(seq 100); do kill -0 "$sp" 2>/dev/null || break; sleep 0.1; done
check "SIGTERM ends a sync reading an endless stream" test "$(kill -0 "$sp" 2>/dev/null && echo alive)" = ""
wait %% 2>/dev/null
check "SIGTERM: the message says so" grep -q 'stopped by a signal' "$DIR/err"
check "SIGTERM: the cache is as it was" unchanged
is "SIGTERM: no temp files" "$(ls "$CACHE" | grep -c '^tmp\.')" 0

# --- 3. An HTML page with white space before it ------------------------------------------
printf '\n  \n<!DOCTYPE html><html><body>Error</body></html>\n' > "$DIR/page.csv"
"$SYNC" -c "$CONF" --csv "$DIR/page.csv" --force 2>"$DIR/err"
is "an HTML page after white space: exit 7" "$?" 7
check "an HTML page after white space: named" grep -q 'page.csv:1:1: this is an HTML page' "$DIR/err"

# --- 4. A wide table: 300 columns of 53-byte names (a column list over 16 KiB) -------------
wide() { # ROWS SUFFIX: 300 columns, the last one named with SUFFIX
	awk -v n="$1" -v s="$2" 'BEGIN {
		for (c = 1; c <= 300; c++) printf "%s\"%s\"", (c > 1 ? "," : ""), sprintf("column_%046d", c) (c == 300 ? s : "")
		print ""
		for (r = 1; r <= n; r++) { for (c = 1; c <= 300; c++) printf "%s\"%d\"", (c > 1 ? "," : ""), r * c; print "" }
	}'
}
wide 200 "" > "$DIR/w200.csv"
wide 200 "" > "$DIR/w200b.csv"
wide 10 "" > "$DIR/w10.csv"
wide 200 x > "$DIR/w200x.csv"
"$SYNC" -c "$CONF" --csv "$DIR/w200.csv" --force 2>/dev/null
is "wide: imported" "$?" 0
m=$(stat -c %s "$CACHE/current/columns.json")
check "wide: the column list is $m bytes, over 16 KiB" test "$m" -gt 16384
check "wide: meta.json stays small (the responders read it)" test "$(stat -c %s "$CACHE/current/meta.json")" -lt 512
st=$(api "$URL/status")
is "wide: /status cache_exists" "$(jq -r .cache_exists <<<"$st")" true
is "wide: /status count" "$(jq -r .count <<<"$st")" 200
is "wide: ?refresh=true answers 200" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data?refresh=true")" 200
wait_idle
is "wide: ?refresh=true body has the rows" "$(api "$URL/fetch-data?refresh=true" | jq '.data | length')" 200
wait_idle
timeout 10 curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&payload=none" > "$DIR/sse" 2>/dev/null
is "wide: SSE cached event carries the count" "$(sse_data "$DIR/sse" cached | jq -r .payload.count)" 200
"$SYNC" -c "$CONF" --csv "$DIR/w200b.csv" 2>"$DIR/err"
is "wide: the same columns again: imported" "$?" 0
is "wide: the same columns do not log 'columns changed'" "$(grep -c 'columns changed' "$DIR/err")" 0
"$SYNC" -c "$CONF" --csv "$DIR/w200x.csv" 2>"$DIR/err"
is "wide: one renamed column does log it" "$(grep -c 'columns changed' "$DIR/err")" 1
wide_before=$(md5sum < "$CACHE/data_cache.json")
"$SYNC" -c "$CONF" --csv "$DIR/w10.csv" 2>"$DIR/err"
is "wide: the shrink guard refuses 10 rows after 200" "$?" 7
check "wide: its message" grep -q '10 rows, fewer than min_rows_ratio 0.5 of the 200 cached' "$DIR/err"
is "wide: the cache is unchanged" "$(md5sum < "$CACHE/data_cache.json")" "$wide_before"

# --- 5. The shrink guard fails closed -----------------------------------------------------
meta=$(readlink -f "$CACHE/current")/meta.json
cp "$meta" "$DIR/meta.keep"
printf '{"count":' > "$meta"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>"$DIR/err"
is "an unreadable current row count: refused without --force (exit 7)" "$?" 7
check "the message says the guard cannot compare" grep -q "row count cannot be read.*use --force" "$DIR/err"
is "an unreadable current row count: cache unchanged" "$(md5sum < "$CACHE/data_cache.json")" "$wide_before"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" --force 2>/dev/null
is "... and accepted with --force" "$?" 0
is "... which serves the new data" "$(api "$URL/status" | jq -r .count)" 200

# --- 6. /status is valid JSON after a long error (json-c writes '/' as '\/') -----------------
"$SYNC" -c "$CONF" --csv "$(printf '/%.0s' {1..990})x.csv" 2>/dev/null
api "$URL/status" > "$DIR/st"
check "long error of slashes: /status is valid JSON" jq -e . "$DIR/st"
check "long error of slashes: the error is there" jq -e '.last_sync.error | test("x.csv: No such file")' "$DIR/st"
# 2 + 700 × 2 bytes: the message is cut (at 1,023 bytes) inside a character.
"$SYNC" -c "$CONF" --csv "//$(printf 'é%.0s' {1..700}).csv" 2>/dev/null
api "$URL/status" > "$DIR/st"
check "long error of 2-byte characters: /status is valid JSON" jq -e . "$DIR/st"
check "long error of 2-byte characters: valid UTF-8" iconv -f UTF-8 -t UTF-8 "$DIR/st"
check "long error of 2-byte characters: the error is kept, at most 1 KiB" jq -e '.last_sync.error | startswith("//éé") and (utf8bytelength <= 1024)' "$DIR/st"

# --- 7. Time is the clock's: 6 imports back to back -----------------------------------------
"$GEN" -n 50 csv > "$DIR/s1.csv"
: > "$DIR/lm"
for i in $(seq 6); do
	"$SYNC" -c "$CONF" --csv "$DIR/s1.csv" --force 2>/dev/null || notok "import $i"
	h=$(curl -sI -H "X-API-Key: $KEY" "$URL/fetch-data" | tr -d '\r')
	lm=$(date -d "$(awk -F': ' 'tolower($1)=="last-modified"{print $2}' <<<"$h")" +%s)
	now=$(date +%s)
	age=$(api "$URL/status" | jq .age_seconds)
	et=$(awk -F': ' 'tolower($1)=="etag"{print $2}' <<<"$h")
	echo "$lm $now $age $et" >> "$DIR/lm"
done
is "6 quick imports: no Last-Modified after the clock" "$(awk '$1 > $2' "$DIR/lm" | wc -l)" 0
is "6 quick imports: no negative age_seconds" "$(awk '$3 < 0' "$DIR/lm" | wc -l)" 0
is "6 quick imports: 6 different Last-Modified" "$(cut -d' ' -f1 "$DIR/lm" | sort -u | wc -l)" 6
is "6 quick imports: 6 different ETags" "$(cut -d' ' -f4 "$DIR/lm" | sort -u | wc -l)" 6
lu=$(date -d "$(jq -r .last_updated "$CACHE/data_cache.json")" +%s)
is "last_updated in the body is the file's time" "$lu" "$(stat -L -c %Y "$CACHE/data_cache.json")"
check "the gzip copy carries the same envelope" cmp -s <(gunzip -c "$CACHE/current/data_cache.json.gz") "$CACHE/data_cache.json"

# --- 8. A nearly full disk: old snapshots go before the build, not after -------------------
if [ "$(id -u)" = 0 ] && mkdir -p "$DIR/small" && mount -t tmpfs -o size=6m tmpfs "$DIR/small" 2>/dev/null; then
	trap 'umount "$DIR/small" 2>/dev/null; inst_down' EXIT
	sed "s|^cache_dir = .*|cache_dir = $DIR/small/cache|" "$CONF" > "$DIR/small.conf"
	# Snapshots of about 1.7 MB: three fill the 6 MB; the old order (build, then prune)
	# found 0.8 MB free for the fourth and failed with ENOSPC.
	for s in 1 2 3; do "$GEN" -n 2000 -s $s csv > "$DIR/d$s.csv"; done
	"$GEN" -n 2001 -s 4 csv > "$DIR/d4.csv"
	for s in 1 2 3; do "$SYNC" -c "$DIR/small.conf" --csv "$DIR/d$s.csv" 2>/dev/null; done
	n=$(ls "$DIR/small/cache/snapshots" | wc -l)
	cur=$(readlink "$DIR/small/cache/current")
	free=$(df -B1 --output=avail "$DIR/small" | tail -n1)
	snap=$(du -sb "$DIR/small/cache/$cur" | cut -f1)
	echo "# full disk: $n snapshots of about $snap bytes, $free bytes free"
	"$SYNC" -c "$DIR/small.conf" --csv "$DIR/d4.csv" 2>"$DIR/full.log"
	is "full disk: the import succeeds" "$?" 0
	check "full disk: the log says old snapshots were removed first" grep -q 'low on disk space: removed the old snapshot' "$DIR/full.log"
	check "full disk: never the current one (${cur#snapshots/})" bash -c "! grep 'removed the old snapshot ${cur#snapshots/}' '$DIR/full.log'"
	is "full disk: the new data is served" "$(jq -r .count "$DIR/small/cache/data_cache.json")" 2001
	is "full disk: no temp files left" "$(ls "$DIR/small/cache" | grep -c '^tmp\.')" 0
	umount "$DIR/small"
else
	echo "skip - full disk: no tmpfs mount here (needs root)"
fi
finish
