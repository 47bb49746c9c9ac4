#!/bin/bash
# 200 concurrent POST /refresh while a sync runs: exactly one starts it. The sync here is
# slowed by a wrapper (it sleeps, then runs the real pmacache-sync, which inherits the lock).
. "$(dirname "$0")/../lib.sh"
mkdir -p "$TMPBASE"
slow=$TMPBASE/slow-sync
printf '#!/bin/sh\nsleep 8\nexec %s "$@"\n' "$SYNC" > "$slow"
chmod +x "$slow"
inst_up single "sync_bin = $slow
workers = 4
threads = 64"
"$GEN" -n 50 csv > "$DIR/o.csv"
"$SYNC" -c "$CONF" --csv "$DIR/o.csv" 2>/dev/null

seq 200 | xargs -P 200 -I{} curl -s -X POST -H "X-API-Key: $KEY" "$URL/refresh" -o "$DIR/r.{}" -w '%{http_code}\n' > "$DIR/codes"
is "200 answers, all 202" "$(grep -c '^202$' "$DIR/codes")" 200
is "exactly one triggered" "$(cat "$DIR"/r.* | grep -c '"triggered"')" 1
is "all others already in progress" "$(cat "$DIR"/r.* | grep -c '"already in progress"')" 199
running=$(pgrep -f -c "sync -c $CONF --lock-fd 3" || true)
is "one sync process" "$running" 1
# A cron or CLI run meanwhile exits at once with "already running".
"$SYNC" -c "$CONF" 2>"$DIR/err"
is "CLI sync while running: exit 9" "$?" 9
check "CLI says already running" grep -q 'already running' "$DIR/err"
wait_idle
is "sync finished" "$(api "$URL/status" | jq .update_in_progress)" false
no_zombies "no zombies"

# A cron run, a CLI run and POST /refresh started within one second: one sync runs, the
# others are turned away. The import is large enough (30,000 rows) to still be running
# when the last of them starts.
"$GEN" -n 30000 csv > "$DIR/big.csv"
make_csv_sync
echo "$DIR/big.csv" > "$DIR/next.csv"
sed -i "s|^sync_bin = .*|sync_bin = $DIR/csv-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
for round in 1 2 3; do
	(cd / && env -i PATH=/usr/bin:/bin "$SYNC" -c "$CONF" --csv "$DIR/big.csv" >>"$DIR/cron.log" 2>&1; echo $? > "$DIR/cron.rc") &
	("$SYNC" -c "$CONF" --csv "$DIR/big.csv" 2>>"$DIR/cli.log"; echo $? > "$DIR/cli.rc") &
	r=$(api -X POST "$URL/refresh" | jq -r .status)
	wait
	wait_idle
	cron=$(cat "$DIR/cron.rc") cli=$(cat "$DIR/cli.rc")
	won=$(((cron == 0) + (cli == 0))) lost=$(((cron == 9) + (cli == 9)))
	[ "$r" = triggered ] && won=$((won + 1))
	[ "$r" = "already in progress" ] && lost=$((lost + 1))
	is "round $round: cron, CLI and /refresh at once: one ran (cron $cron, CLI $cli, /refresh $r)" "$won:$lost" "1:2"
done
check "the ones turned away said already running" grep -q 'already running' "$DIR/cli.log" "$DIR/cron.log"

# 100 refreshes, one after the other: every sync child is reaped, fds stay flat.
pids=$(pgrep -f "pmacache-fcgi -c $CONF" | tr '\n' ' ')
fds() { local n=0 p; for p in $pids; do n=$((n + $(ls /proc/$p/fd | wc -l))); done; echo $n; }
"$GEN" -n 50 csv > "$DIR/small.csv"
echo "$DIR/small.csv" > "$DIR/next.csv"
sed -i "s|^min_rows_ratio.*||" "$CONF"; echo "min_rows_ratio = 0" >> "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
pids=$(pgrep -f "pmacache-fcgi -c $CONF" | tr '\n' ' ')
fd0=$(fds) triggered=0
for i in $(seq 100); do
	[ "$(api -X POST "$URL/refresh" | jq -r .status)" = triggered ] && triggered=$((triggered + 1))
	wait_idle
done
is "100 refreshes triggered" "$triggered" 100
is "all succeeded" "$(api "$URL/status" | jq -r .last_sync.result)" success
no_zombies "0 zombies after 100 refreshes"
fd1=$(fds)
check "responder fds flat ($fd0 -> $fd1)" test "$fd1" -le $((fd0 + 4))
is "no sync left running" "$(pgrep -c -f "pmacache-sync -c $CONF" || true)" 0
finish
