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
zombies=$(ps -eo stat,ppid | awk -v p="$(pgrep -f "pmacache-fcgi -c $CONF" | tr '\n' '|')" '$1 ~ /^Z/' | wc -l)
is "no zombies" "$zombies" 0
finish
