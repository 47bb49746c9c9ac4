#!/bin/bash
# Bad imports leave the cache as it was: a cut export, an HTML page, the shrink guard, and
# --force to accept a shrink.
. "$(dirname "$0")/../lib.sh"
inst_up import_errors

"$GEN" -n 500 csv > "$DIR/orders.csv"
check "import" "$SYNC" -c "$CONF" --csv "$DIR/orders.csv"
# An import never loads libcurl (sync/curl_lazy.c loads it for HTTP only): ld.so lists what
# it loads, and libjson-c shows that the listing works.
LD_DEBUG=files "$SYNC" -c "$CONF" --csv "$DIR/orders.csv" >/dev/null 2>"$DIR/ld.log"
is "an import loads no libcurl" "$(grep -c 'file=libcurl' "$DIR/ld.log")" 0
check "ld.so listed the libraries it loaded" grep -q 'file=libjson-c' "$DIR/ld.log"

# A bad import leaves the cache as it was.
cp "$CACHE/data_cache.json" "$DIR/before"
head -c 3000 "$DIR/orders.csv" > "$DIR/cut.csv"
"$SYNC" -c "$CONF" --csv "$DIR/cut.csv" 2>"$DIR/err"
is "truncated export: exit 7" "$?" 7
check "truncated export: message with file:line:column" grep -q 'cut.csv:[0-9]*:[0-9]*: ' "$DIR/err"
check "cache unchanged" cmp -s "$DIR/before" "$CACHE/data_cache.json"
printf '<html><body>Session expired</body></html>' > "$DIR/page.csv"
"$SYNC" -c "$CONF" --csv "$DIR/page.csv" 2>/dev/null
is "HTML export: exit 7" "$?" 7
"$GEN" -n 100 csv > "$DIR/small.csv"
"$SYNC" -c "$CONF" --csv "$DIR/small.csv" 2>"$DIR/err"
is "shrink guard: exit 7" "$?" 7
check "shrink guard names min_rows_ratio" grep -q min_rows_ratio "$DIR/err"
check "cache unchanged after refusals" cmp -s "$DIR/before" "$CACHE/data_cache.json"
check "--force accepts the shrink" "$SYNC" -c "$CONF" --csv "$DIR/small.csv" --force
is "served count after --force" "$(api "$URL/fetch-data" | jq .count)" 100
is "no temp files left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0

# log_syslog = 1: the sync's lines go to syslog (its socket, /dev/log), not to stderr.
cp "$CONF" "$DIR/syslog.conf"
echo "log_syslog = 1" >> "$DIR/syslog.conf"
strace -f -qq -e trace=connect,sendto -s 400 -o "$DIR/syslog.trace" \
	"$SYNC" -c "$DIR/syslog.conf" --csv "$DIR/no-such.csv" 2>"$DIR/syslog.err"
is "log_syslog: the failed sync still exits 2" "$?" 2
check "log_syslog: the sync connects to syslog's socket" grep -q 'connect(.*"/dev/log"' "$DIR/syslog.trace"
is "log_syslog: nothing on stderr" "$(cat "$DIR/syslog.err")" ""
"$SYNC" -c "$CONF" --csv "$DIR/no-such.csv" 2>"$DIR/stderr.err"
check "without it: the line is on stderr" grep -q 'sync failed: .*no-such.csv' "$DIR/stderr.err"
finish
