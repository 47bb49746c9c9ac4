#!/bin/bash
# Diagnosable: the doctor (pmacache-sync --check) prints one line per check with OK or FAIL
# and the fix, and exits non-zero on any FAIL; start refuses to serve with no usable key or
# with folders nginx cannot reach; a sync that cannot start still reports to /status; stop
# works when the config no longer parses; status reports; the drop-in's read timeout
# follows sse_heartbeat_s.
. "$(dirname "$0")/../lib.sh"
inst_up doctor
"$GEN" -n 40 csv > "$DIR/o.csv"
check "import" "$SYNC" -c "$CONF" --csv "$DIR/o.csv"
gone() { ! pgrep -f "$1" >/dev/null; }
doc() { "$SYNC" -c "$1" --check >"$DIR/doc.out" 2>&1; echo $?; }

# A CSV-only instance: everything OK but phpMyAdmin, which a sync from cron would need.
is "doctor, no phpMyAdmin configured: exit 2" "$(doc "$CONF")" 2
is "doctor: every line is OK or FAIL" "$(grep -cvE '^(OK |FAIL )' "$DIR/doc.out")" 0
check "doctor: the config line" grep -q "^OK   config $CONF" "$DIR/doc.out"
check "doctor: the key file, its count and mode" grep -Eq "^OK   api_keys_file $DIR/api_keys: 1 usable key, mode 06[04]0" "$DIR/doc.out"
check "doctor: phpMyAdmin not configured, and the fix" grep -q '^FAIL phpMyAdmin is not configured: .*fix: set them' "$DIR/doc.out"
check "doctor: chromedriver and chromium versions compared" grep -Eq '^OK   chromedriver [0-9]+ and chromium [0-9]+: same major version' "$DIR/doc.out"
check "doctor: cache_dir writable" grep -q "^OK   cache_dir $CACHE: writable by" "$DIR/doc.out"
check "doctor: cache_dir readable by nginx" grep -q "^OK   cache_dir $CACHE: readable by nginx" "$DIR/doc.out"
is "doctor: exactly one FAIL" "$(grep -c '^FAIL' "$DIR/doc.out")" 1

# phpMyAdmin configured but down; a password file too open.
pw=$DIR/pma_password
printf 'secret-pw' > "$pw"
secret "$pw"
port=$(free_port)
{ cat "$CONF"; printf 'pma_url = http://127.0.0.1:%s/\npma_user = u\npma_password_file = %s\npma_db = d\npma_table = t\n' "$port" "$pw"; } > "$DIR/pma.conf"
is "doctor, phpMyAdmin down: exit 2" "$(doc "$DIR/pma.conf")" 2
check "doctor: the password file OK" grep -q "^OK   pma_password_file $pw" "$DIR/doc.out"
check "doctor: phpMyAdmin unreachable, and the fix" grep -q "^FAIL phpMyAdmin http://127.0.0.1:$port/: unreachable: .*fix: check pma_url" "$DIR/doc.out"
chmod 644 "$pw"
doc "$DIR/pma.conf" >/dev/null
check "doctor: password file 0644 refused, the same message as a key file's" grep -q "^FAIL pma_password_file $pw: mode 0644, owner $(id -un): refused: it must be mode 0600 or 0640" "$DIR/doc.out"
secret "$pw"

# Keys: unusable ones by file:line; none usable: FAIL, and start refuses.
cp "$DIR/api_keys" "$DIR/api_keys.good"
printf '# keys\nshort-key\n%s\n\n   tiny   \n' "$KEY" > "$DIR/api_keys"
doc "$CONF" >/dev/null
check "doctor: a short key by file:line (2)" grep -q "^FAIL api_keys_file $DIR/api_keys:2: a key of 9 bytes is not used" "$DIR/doc.out"
check "doctor: another by file:line (5)" grep -q "^FAIL api_keys_file $DIR/api_keys:5: a key of 4 bytes" "$DIR/doc.out"
check "doctor: the good one counted" grep -q "^OK   api_keys_file $DIR/api_keys: 1 usable key" "$DIR/doc.out"
printf 'short-key\n' > "$DIR/api_keys"
doc "$CONF" >/dev/null
check "doctor: no usable key" grep -q "^FAIL api_keys_file $DIR/api_keys: no usable key: every request would get 401; fix: add one" "$DIR/doc.out"
"$PMACACHE" -c "$CONF" stop >/dev/null
"$PMACACHE" -c "$CONF" start >/dev/null 2>"$DIR/start.err"
is "start with no usable key: refused" "$?" 1
check "start says why ($(head -c 150 "$DIR/start.err"))" grep -q "no usable API key, so every request would get 401: api_keys_file $DIR/api_keys:1: a key of 9 bytes" "$DIR/start.err"
is "start with no usable key: nothing started" "$(ls "$DIR/run/"*.pid 2>/dev/null | wc -l)" 0
rm -f "$DIR/api_keys"
doc "$CONF" >/dev/null
check "doctor: key file missing, and the fix" grep -q "^FAIL api_keys_file $DIR/api_keys: No such file or directory; fix: create it" "$DIR/doc.out"
"$PMACACHE" -c "$CONF" start >/dev/null 2>"$DIR/start.err"
is "start with no key file: refused" "$?" 1
cp "$DIR/api_keys.good" "$DIR/api_keys"
secret "$DIR/api_keys"
out=$("$PMACACHE" -c "$CONF" start)
check "start with a key: serving ($out)" grep -q "^pmacache: serving on http://127.0.0.1:$PORT" <<<"$out"

# status: responders, nginx, the last sync, the cache's age.
"$PMACACHE" -c "$CONF" status > "$DIR/status.out"
is "status: exit 0" "$?" 0
check "status: responders" grep -q '^responders: running (pid [0-9]*)' "$DIR/status.out"
check "status: nginx" grep -q "^nginx: running on 127.0.0.1:$PORT" "$DIR/status.out"
check "status: the last sync" grep -q '^last sync: success (started .*rows 40)' "$DIR/status.out"
check "status: the cache's age" grep -Eq '^cache: [0-9]+ bytes, [0-9]+s old' "$DIR/status.out"

# A config typo while running: /refresh starts a sync that cannot read its config; /status
# says so (it no longer shows the previous success); stop still works.
cp "$CONF" "$DIR/conf.good"
echo "cahce_dir = oops" >> "$CONF"
line=$(wc -l < "$CONF")
is "config typo: POST /refresh is accepted" "$(code -X POST -H "X-API-Key: $KEY" "$URL/refresh")" 202
wait_idle
st=$(api "$URL/status")
is "config typo: /status says the sync failed" "$(jq -r .last_sync.result <<<"$st")" failed
check "config typo: /status names file:line and key ($(jq -r .last_sync.error <<<"$st"))" grep -q "$CONF:$line: unknown key 'cahce_dir'" <<<"$(jq -r .last_sync.error <<<"$st")"
is "config typo: doctor FAILs on the config" "$(doc "$CONF"; grep -c "^FAIL config: $CONF:$line: unknown key 'cahce_dir'" "$DIR/doc.out")" "2
1"
"$PMACACHE" -c "$CONF" stop >/dev/null 2>"$DIR/stop.err"
is "config typo: stop works anyway" "$?" 0
check "config typo: stop says it used the pid files" grep -q "does not parse (above); stopping from the pid files in $DIR/run" "$DIR/stop.err"
check "config typo: the responders are gone" gone "pmacache-fcgi -c $CONF"
check "config typo: nginx is gone" sh -c "! kill -0 $(cat "$DIR/run/nginx.pid" 2>/dev/null || echo 999999) 2>/dev/null"
cp "$DIR/conf.good" "$CONF"

# The drop-in carries any heartbeat: its read timeout follows sse_heartbeat_s.
echo "sse_heartbeat_s = 3600" >> "$CONF"
is "sse_heartbeat_s 3600: fastcgi_read_timeout 7260s" "$("$PMACACHE" -c "$CONF" nginx-snippet | grep -o 'fastcgi_read_timeout [0-9]*s')" "fastcgi_read_timeout 7260s"
cp "$DIR/conf.good" "$CONF"
is "sse_heartbeat_s 15: fastcgi_read_timeout 660s" "$("$PMACACHE" -c "$CONF" nginx-snippet | grep -o 'fastcgi_read_timeout [0-9]*s')" "fastcgi_read_timeout 660s"

# Folders nginx cannot reach: the doctor says which, and start refuses to say "serving".
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$DIR/closed"
	chmod 700 "$DIR/closed"
	sed "s|^run_dir = .*|run_dir = $DIR/closed/run|" "$CONF" > "$DIR/closed.conf"
	mkdir -p "$DIR/closed/run"
	doc "$DIR/closed.conf" >/dev/null
	check "doctor: run_dir nginx cannot reach, with the folder and its mode" grep -q "^FAIL run_dir: www-data cannot enter $DIR/closed (mode 0700, root:root); fix: move run_dir" "$DIR/doc.out"
	"$PMACACHE" -c "$DIR/closed.conf" start >"$DIR/closed.out" 2>&1
	is "start, run_dir closed to nginx: refused" "$?" 1
	check "start says why and how to fix it ($(head -c 200 "$DIR/closed.out"))" grep -q "not serving: www-data (nginx's workers) cannot reach $DIR/closed (mode 700, root:root), so nginx cannot connect to the responders' socket: move run_dir (e.g. to /run/pmacache) or make that folder traversable (chmod o+x)" "$DIR/closed.out"
	check "start never said serving" sh -c "! grep -q 'serving on' '$DIR/closed.out'"
	check "and stopped what it started" gone "pmacache-fcgi -c $DIR/closed.conf"
else
	skip "folders nginx cannot reach" "not root: nginx runs as this user"
fi
"$PMACACHE" -c "$CONF" start >/dev/null
finish
