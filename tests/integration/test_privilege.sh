#!/bin/bash
# Least privilege: started as root, no pmacache process runs as root (nginx's master aside):
# the responders and every sync (from /refresh, from the CLI) run as `user`, nginx's workers
# as www-data reaching the socket and the snapshots through `group`; cache_dir is 0750 and
# the snapshots 0640; secret files looser than 0600/0640 or owned by others are refused.
. "$(dirname "$0")/../lib.sh"
if [ "$(id -u)" != 0 ]; then
	skip "least privilege" "not root: everything already runs as $(id -un)"
	finish
fi
inst_up privilege
make_csv_sync
sed -i "s|^sync_bin = .*|sync_bin = $DIR/csv-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
uid=$(id -u "$PMC_USER")
gid=$(getent group "$PMC_USER" | cut -d: -f3)

# creds PID: "uid uid uid uid/gid gid gid gid" (real, effective, saved, fs) from /proc.
creds() { awk '/^Uid:/ { u = $2 " " $3 " " $4 " " $5 } /^Gid:/ { g = $2 " " $3 " " $4 " " $5 } END { print u "/" g }' "/proc/$1/status"; }
# rooted: processes whose command line names this instance's folder and that run as root
# (any of the four uids 0), nginx's master aside.
rooted() {
	local p c master
	master=$(cat "$DIR/run/nginx.pid")
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = "$master" ] && continue
		c=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
		case $c in *"$DIR"*) ;; *) continue ;; esac
		[[ " $(creds "$p") " =~ [\ /]0[\ /] ]] && echo "$p $c"
	done
}
want="$uid $uid $uid $uid/$gid $gid $gid $gid"

"$GEN" -n 300 csv > "$DIR/orders.csv"
echo "$DIR/orders.csv" > "$DIR/next.csv"
resp=$(descendants "$(cat "$DIR/run/pmacache-fcgi.pid")")
is "responders: at least 2 processes" "$([ "$(wc -w <<<"$resp")" -ge 2 ] && echo yes)" yes
bad=""
for p in $resp; do [ "$(creds "$p")" = "$want" ] || bad+="$p:$(creds "$p") "; done
is "responders run as $PMC_USER:$PMC_USER (real, effective, saved, fs ids)" "$bad" ""
workers=$(ps -o pid= --ppid "$(cat "$DIR/run/nginx.pid")")
www=$(id -u www-data)
bad=""
for p in $workers; do
	[[ $(creds "$p") == "$www $www $www $www/"* ]] || bad+="$p:$(creds "$p") "
	grep -q "^Groups:.*\b$gid\b" "/proc/$p/status" || bad+="$p:not-in-group "
done
is "nginx workers run as www-data, in group $PMC_USER" "$bad" ""
is "after start: nothing of ours runs as root" "$(rooted)" ""
is "socket: 0660 $PMC_USER:$PMC_USER" "$(stat -c '%a %U:%G' "$DIR/run/fcgi.sock")" "660 $PMC_USER:$PMC_USER"

# A sync from POST /refresh: the responder's child, so the same user; caught while it sleeps
# (the wrapper becomes pmacache-sync by exec, which keeps its ids).
echo 3 > "$DIR/sleep"
is "POST /refresh: 202" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 202
sp=""
wait_for 10 sh -c "pgrep -f '$DIR/csv-sync' >/dev/null" && sp=$(pgrep -f "$DIR/csv-sync" | head -1)
if [ -n "$sp" ]; then is "the /refresh sync runs as $PMC_USER" "$(creds "$sp")" "$want"; else notok "the /refresh sync runs as $PMC_USER" "no sync process seen"; fi
is "during a /refresh sync: nothing of ours runs as root" "$(rooted)" ""
check "the /refresh sync finishes" wait_idle
is "it succeeded" "$(api "$URL/status" | jq -r .last_sync.result)" success
echo 0 > "$DIR/sleep"

is "cache_dir: 0750 $PMC_USER:$PMC_USER" "$(stat -c '%a %U:%G' "$CACHE")" "750 $PMC_USER:$PMC_USER"
cur=$(readlink -f "$CACHE/current")
is "snapshot: 0640 $PMC_USER" "$(stat -c '%a %U' "$cur/data_cache.json" "$cur/data_cache.json.gz" | sort -u)" "640 $PMC_USER"
is "status.json: 0640" "$(stat -c %a "$CACHE/status.json")" 640
is "nothing in cache_dir is open to others" "$(find "$CACHE" ! -type l -perm /o+rwx | head -3)" ""
is "nginx (www-data) serves the snapshot through the group" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
# A snapshot nginx may not read: the documented JSON 500, not nginx's HTML 403.
chmod 600 "$cur/data_cache.json" "$cur/data_cache.json.gz"
curl -s -D "$DIR/h" -o "$DIR/b" -H "X-API-Key: $KEY" "$URL/fetch-data"
is "snapshot closed to nginx: 500" "$(head -n 1 "$DIR/h" | cut -d' ' -f2)" 500
is "snapshot closed to nginx: the JSON body" "$(cat "$DIR/b")" '{"status":"error","message":"Error reading cache"}'
check "snapshot closed to nginx: JSON content type" grep -qi '^content-type: application/json' "$DIR/h"
st=$(api "$URL/status")
is "snapshot closed to nginx: /status says the cache is unreadable" "$(jq -c '[.cache_exists,.cache_readable]' <<<"$st")" '[true,false]'
check "snapshot closed to nginx: /status names the file and its mode ($(jq -r .cache_error <<<"$st"))" \
	grep -q "$cur/data_cache.json (mode 0600): nginx" <<<"$(jq -r .cache_error <<<"$st")"
chmod 640 "$cur/data_cache.json" "$cur/data_cache.json.gz"
is "readable again: 200" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
is "readable again: /status says so, with no error" "$(api "$URL/status" | jq -c '[.cache_readable,.cache_error]')" '[true,null]'
chmod 700 "$cur"
is "snapshot folder closed to nginx: /status says which folder" "$(api "$URL/status" | jq -r .cache_error)" "$cur (mode 0700): nginx, which reaches it through the group, cannot enter it"
chmod 750 "$cur"

# A sync started as root from the CLI drops to the user before anything else.
"$GEN" -n 320 csv > "$DIR/orders2.csv"
check "CLI sync as root: exit 0" "$SYNC" -c "$CONF" --csv "$DIR/orders2.csv"
cur=$(readlink -f "$CACHE/current")
is "CLI sync as root: its snapshot is $PMC_USER's" "$(stat -c '%U:%G %a' "$cur" "$cur/data_cache.json" | sort -u | paste -sd' ')" "$PMC_USER:$PMC_USER 640 $PMC_USER:$PMC_USER 750"
is "CLI sync as root: status.json is $PMC_USER's" "$(stat -c %U "$CACHE/status.json")" "$PMC_USER"
sed "s|^sync_bin = .*|user = nosuchuser-pmc|" "$CONF" > "$DIR/nouser.conf"
"$SYNC" -c "$DIR/nouser.conf" --csv "$DIR/orders2.csv" 2>"$DIR/nouser.log"
is "CLI sync, user missing: exit 2" "$?" 2
check "CLI sync, user missing: says so and how to create it" grep -q "user 'nosuchuser-pmc' does not exist: create it (useradd --system" "$DIR/nouser.log"
sed "s|^sync_bin = .*|user = root|" "$CONF" > "$DIR/root.conf"
"$SYNC" -c "$DIR/root.conf" --csv "$DIR/orders2.csv" 2>"$DIR/root.log"
is "CLI sync, user = root: exit 2" "$?" 2
check "CLI sync, user = root: refused" grep -q "must not be root" "$DIR/root.log"
is "refused syncs changed nothing" "$(readlink -f "$CACHE/current")" "$cur"

# Secret files: 0600 or 0640, owned by root or the user; anything else admits nobody.
chmod 644 "$DIR/api_keys"
is "key file 0644: the right key gets 401" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 401
check "key file 0644: the log says why and how to fix it" grep -q "api_keys_file $DIR/api_keys: mode 0644, owner root: refused: it must be mode 0600 or 0640" "$DIR/run/log/pmacache-fcgi.log"
chmod 640 "$DIR/api_keys"
is "key file back to 0640: 200 without a restart" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
chown nobody "$DIR/api_keys"
is "key file owned by nobody: 401" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 401
chown root "$DIR/api_keys"
is "key file root:$PMC_USER 0640 again: 200" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200
cp "$DIR/api_keys" "$DIR/pw"
chmod 644 "$DIR/pw"
printf 'pma_url = http://127.0.0.1:9/\npma_user = u\npma_password_file = %s\npma_db = d\npma_table = t\n' "$DIR/pw" > "$DIR/pma.part"
cat "$CONF" "$DIR/pma.part" > "$DIR/pw.conf"
"$SYNC" -c "$DIR/pw.conf" 2>"$DIR/pw.log"
is "password file 0644: exit 2" "$?" 2
check "password file 0644: the same message" grep -q "pma_password_file $DIR/pw: mode 0644, owner root: refused: it must be mode 0600 or 0640" "$DIR/pw.log"

# Start checks that nginx's user can reach the group's files.
"$PMACACHE" -c "$CONF" stop >/dev/null
sed "s|^sync_bin = .*|group = nogroup|" "$CONF" > "$DIR/nogroup.conf"
"$PMACACHE" -c "$DIR/nogroup.conf" start >/dev/null 2>"$DIR/nogroup.log"
is "start, www-data not in group: exit 1" "$?" 1
check "start, www-data not in group: says usermod" grep -q "usermod -aG nogroup www-data" "$DIR/nogroup.log"
"$PMACACHE" -c "$CONF" start >/dev/null
finish
