#!/bin/bash
# Issue 13, the serving side: hostile files in cache_dir and hostile requests. A planted
# symlink gets the JSON 500 and nothing of its target; HEAD never starts a sync.
. "$(dirname "$0")/../lib.sh"
inst_up hostile_serve "sync_bin = $TMPBASE/hostile_serve/mark-sync
sse_heartbeat_s = 1"
# The sync that /refresh starts only leaves a mark: the cache stays as the test planted it.
# It runs as the responders' user, so the mark goes to a folder that user may write.
mkdir -p "$DIR/marks"
[ "$(id -u)" = 0 ] && chown "$PMC_USER" "$DIR/marks"
printf '#!/bin/sh\necho run >> %s/marks/sync-runs\n' "$DIR" > "$DIR/mark-sync"
chmod +x "$DIR/mark-sync"
"$GEN" -n 20 csv > "$DIR/o.csv"
"$SYNC" -c "$CONF" --csv "$DIR/o.csv" 2>/dev/null
check "a real snapshot to start from" test -s "$CACHE/current/data_cache.json"
good=$(readlink "$CACHE/current")

# 1. HEAD with ?refresh=true starts no sync (GET does: the probe works).
is "HEAD ?refresh=true: 200" "$(code -I -H "X-API-Key: $KEY" "$URL/fetch-data?refresh=true")" 200
is "HEAD ?stream=true&refresh=true: 200" "$(code -I -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&refresh=true")" 200
check "HEAD started no sync" test ! -e "$DIR/marks/sync-runs"
is "GET ?refresh=true: 200" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data?refresh=true")" 200
check "GET ?refresh=true started one" wait_for 10 test -s "$DIR/marks/sync-runs"

# 2. Planted symlinks. A root-only secret (nginx runs as www-data when we are root) and
# /etc/passwd, each behind a snapshot whose meta.json is valid.
secret=$DIR/secret
(umask 077; echo "SECRET-$RANDOM-$RANDOM" > "$secret")
plant() { # ID TARGET: snapshots/ID with data_cache.json -> TARGET, made current
	mkdir -p "$CACHE/snapshots/$1"
	cp "$CACHE/$good/meta.json" "$CACHE/snapshots/$1/meta.json"
	ln -sfn "$2" "$CACHE/snapshots/$1/data_cache.json"
	ln -sfn "$2" "$CACHE/snapshots/$1/data_cache.json.gz"
	ln -sfn "snapshots/$1" "$CACHE/tmp.link" && mv -T "$CACHE/tmp.link" "$CACHE/current"
}
want500='{"status":"error","message":"Error reading cache"}'
for target in "$secret" /etc/passwd; do
	case $target in /etc/passwd) id=7ffffff0-2 leak='root:' ;; *) id=7ffffff0-1 leak=SECRET- ;; esac
	plant "$id" "$target"
	name=${target##*/}
	curl -s -D "$DIR/h" -o "$DIR/b" -H "X-API-Key: $KEY" "$URL/fetch-data"
	check "$name, plain: 500" grep -q '^HTTP/1.1 500' "$DIR/h"
	is "$name, plain: the JSON error" "$(cat "$DIR/b")" "$want500"
	curl -s -o "$DIR/bz" -H 'Accept-Encoding: gzip' -H "X-API-Key: $KEY" "$URL/fetch-data"
	check "$name, gzip: nothing of the target" sh -c "! zcat -f '$DIR/bz' | grep -q '$leak'"
	curl -s -D "$DIR/h" -o "$DIR/b" -H "X-API-Key: $KEY" "$URL/fetch-data?refresh=true"
	check "$name, ?refresh=true: 500" grep -q '^HTTP/1.1 500' "$DIR/h"
	is "$name, ?refresh=true: the JSON error" "$(cat "$DIR/b")" "$want500"
	timeout 10 curl -sN -o "$DIR/s" -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true"
	is "$name, ?stream=true: the cached event says so" "$(sse_data "$DIR/s" cached | jq -r .message)" "Error reading cache"
	check "$name: nothing of the target in any answer" sh -c "! grep -q '$leak' '$DIR/b' '$DIR/s'"
done
check "the refusal is logged with its reason" grep -q 'symbolic link' "$DIR/run/log/pmacache-fcgi.log"
# The snapshot folder itself a symlink to a folder outside cache_dir.
mkdir -p "$DIR/outside"
cp "$CACHE/$good/meta.json" "$DIR/outside/"
cp "$secret" "$DIR/outside/data_cache.json"
ln -sfn "$DIR/outside" "$CACHE/snapshots/7ffffff0-3"
ln -sfn snapshots/7ffffff0-3 "$CACHE/tmp.link" && mv -T "$CACHE/tmp.link" "$CACHE/current"
for q in "" "?refresh=true"; do
	body=$(curl -s -H "X-API-Key: $KEY" "$URL/fetch-data$q")
	is "symlinked snapshot folder, '$q': the JSON error" "$body" "$want500"
done
# Back to the real snapshot: served again.
ln -sfn "$good" "$CACHE/tmp.link" && mv -T "$CACHE/tmp.link" "$CACHE/current"
check "the real snapshot is served again" cmp -s <(api "$URL/fetch-data") "$CACHE/$good/data_cache.json"

# An admin's own symlink above the snapshots (cache_dir reached through one) is fine.
"$PMACACHE" -c "$CONF" stop >/dev/null
mv "$CACHE" "$DIR/real-cache" && ln -s "$DIR/real-cache" "$CACHE"
"$PMACACHE" -c "$CONF" start >/dev/null
check "cache_dir behind a symlink: plain /fetch-data served" cmp -s <(api "$URL/fetch-data") "$CACHE/$good/data_cache.json"
is "cache_dir behind a symlink: ?refresh=true served" "$(api "$URL/fetch-data?refresh=true" | jq .count)" 20

# 3. Signals. A responder stops on SIGTERM at once (libfcgi's handler used to swallow it)
# and the supervisor starts another; `pmacache stop` needs no SIGKILL; orphans stop.
sup=$(cat "$DIR/run/pmacache-fcgi.pid")
workers() { pgrep -P "$sup" -f pmacache-fcgi | sort; }
w=$(workers | head -n1)
check "found a responder" test -n "$w"
kill -TERM "$w"
gone() { ! kill -0 "$1" 2>/dev/null; }
check "a responder stops on SIGTERM (bounded wait of 2 s)" wait_for 2 gone "$w"
two() { [ "$(workers | grep -cvx "$w")" = 2 ]; }
check "the supervisor replaced it" wait_for 5 two
is "and serving goes on" "$(code "$URL/health")" 200
# A stream in progress does not hold the stop up.
timeout 20 curl -sN -o /dev/null -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&refresh=true" &
sleep 0.5
errs=$("$PMACACHE" -c "$CONF" stop 2>&1 >/dev/null)
is "pmacache stop needed no SIGKILL" "$errs" ""
check "nor did the supervisor" sh -c "! grep -q SIGKILL '$DIR/run/log/pmacache-fcgi.log'"
is "no responder left after stop" "$(pgrep -fc "pmacache-fcgi -c $CONF")" 0
wait
# The supervisor killed outright: its responders follow it.
"$PMACACHE" -c "$CONF" start >/dev/null
sup=$(cat "$DIR/run/pmacache-fcgi.pid")
wait_for 5 test "$(workers | wc -l)" = 2
orphans=$(workers | paste -sd' ' -)
check "two responders under the new supervisor" test "$(wc -w <<<"$orphans")" = 2
kill -KILL "$sup"
none_left() { for p in $orphans; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
check "responders stop when their supervisor is killed" wait_for 5 none_left
finish
