#!/bin/bash
# The unit tests and one responder run under valgrind's memcheck: 0 errors, no definite leaks.
. "$(dirname "$0")/../lib.sh"
command -v valgrind >/dev/null || { notok "valgrind is not installed"; finish; }
VG="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite"
$VG -q --log-file="$TMPBASE/valgrind-unit.log" "$TOP/build/unit" >"$TMPBASE/valgrind-unit.out" 2>&1
rc=$?
is "unit tests under valgrind: exit 0" "$rc" 0
# A unit test that fails only under valgrind (10x slower, threads one at a time): say which.
[ "$rc" = 0 ] || grep -E '^FAIL|^unit: ' "$TMPBASE/valgrind-unit.out" | head -20 | sed 's/^/#   /'
# -q prints only errors: an empty log is a clean run; a log must not be missing.
check "unit tests under valgrind: a log" test -f "$TMPBASE/valgrind-unit.log"
is "unit tests under valgrind: 0 errors" "$(grep -c '==[0-9]*== ' "$TMPBASE/valgrind-unit.log")" 0

# A responder under valgrind, behind real nginx and spawn-fcgi.
mkdir -p "$TMPBASE/vg"
# The responders run as the pmacache user: valgrind writes their logs as that user.
[ "$(id -u)" = 0 ] && chown "$PMC_USER" "$TMPBASE/vg"
cat > "$TMPBASE/vg/pmacache-fcgi" <<SH
#!/bin/sh
case "\$*" in *--get*|*--check*) exec "$TOP/cgi/pmacache-fcgi" "\$@" ;; esac
exec $VG --trace-children=yes --log-file=$TMPBASE/vg/responder.%p.log "$TOP/cgi/pmacache-fcgi" "\$@"
SH
chmod +x "$TMPBASE/vg/pmacache-fcgi"
rm -f "$TMPBASE"/vg/responder.*.log
export PMACACHE_FCGI=$TMPBASE/vg/pmacache-fcgi
inst_up valgrind "workers = 1
threads = 4
sse_max_streams = 2"
"$GEN" -n 30 csv > "$DIR/o.csv"
"$SYNC" -c "$CONF" --csv "$DIR/o.csv" 2>/dev/null
for i in $(seq 50); do [ "$(code "$URL/health")" = 200 ] && break; sleep 0.2; done
is "health under valgrind" "$(code "$URL/health")" 200
is "status under valgrind" "$(code -H "X-API-Key: $KEY" "$URL/status")" 200
is "fetch-data under valgrind" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
is "refresh=true (streamed body) under valgrind" "$(api "$URL/fetch-data?refresh=true" | jq .count)" 30
is "401 under valgrind" "$(code "$URL/status")" 401
is "404 under valgrind" "$(code "$URL/nope")" 404
wait_idle
timeout 30 curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true" -o "$DIR/sse"
is "SSE under valgrind" "$(sse_kinds "$DIR/sse")" "retry cached done"
is "POST /refresh under valgrind" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 202
wait_idle
inst_down
# Valgrind writes a process's summary as it exits: wait for every process it runs here to end.
check "every process under valgrind ended" wait_for 60 sh -c "! pgrep -f '[v]algrind.*$TMPBASE/vg/' >/dev/null"
logs=$(ls "$TMPBASE"/vg/responder.*.log 2>/dev/null | wc -l)
check "valgrind logs written ($logs)" test "$logs" -ge 2
# Every process valgrind ran must have ended and said so: a log without ERROR SUMMARY is a
# process that was killed (or never finished) and proves nothing.
ended=$(grep -l 'ERROR SUMMARY: ' "$TMPBASE"/vg/responder.*.log 2>/dev/null | wc -l)
is "every process under valgrind ended with a summary ($ended of $logs)" "$ended" "$logs"
clean=$(grep -l 'ERROR SUMMARY: 0 errors' "$TMPBASE"/vg/responder.*.log 2>/dev/null | wc -l)
bad=$((logs - clean))
is "responder processes with valgrind errors or no summary" "$bad" 0
[ "$bad" = 0 ] || grep -h -A20 'Invalid\|definitely lost' "$TMPBASE"/vg/responder.*.log | head -40 >&2
finish
