#!/bin/bash
# End to end: a real sync from the demo phpMyAdmin (MariaDB + php-fpm + nginx) through real
# chromedriver and headless Chromium, served by real nginx + spawn-fcgi, compared value by
# value with MariaDB. Then each failure class: its exit code, the cache untouched, /status
# showing the error, and no browser process left.
. "$(dirname "$0")/../lib.sh"
ROWS=${E2E_ROWS:-5000}
STACK=$TMPBASE/e2e-stack
bash "$TOP/scripts/pma-stack.sh" up "$STACK" "$ROWS" >/dev/null || { notok "demo stack up"; finish; }
. "$STACK/stack.env"
stack_down() { bash "$TOP/scripts/pma-stack.sh" down "$STACK" >/dev/null 2>&1; }
inst_up e2e "$(cat "$STACK/pmacache-pma.conf")
sync_timeout = 120"
trap 'inst_down; stack_down' EXIT
# our_browsers [COMM]: pids of the chromedriver, Chromium and crashpad processes this test's
# syncs started, not another's: their HOME is the sync's browser folder in this cache_dir, or
# (Chromium's helpers, whose environment is cleared) their arguments name its profile.
our_browsers() {
	local p
	for p in $(pgrep -f "${1:-chrom}"); do
		{ tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -q "^HOME=$CACHE/tmp\.browser\." ||
			tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF "$CACHE/tmp.browser."; } &&
			{ [ -z "${1:-}" ] || [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ]; } && echo "$p"
	done
}
no_browser() { [ -z "$(our_browsers)" ]; }
sql() { mariadb --no-defaults --default-character-set=utf8mb4 -S "$DB_SOCKET" -u root -N -B -r "$@"; }

# 1. A real sync from the CLI.
"$SYNC" -c "$CONF" 2>"$DIR/sync.log"
is "sync exits 0" "$?" 0
for p in starting login export download convert swap; do
	check "phase $p reported" grep -q "phase $p" "$DIR/sync.log"
done
check "progress.json names a phase" jq -e .phase "$CACHE/progress.json"
# The default route (export_via = http): the browser logs in and fills the export form,
# libcurl POSTs it with the browser's cookies and user agent, and the body streams into the
# conversion.
check "the export streamed into the conversion (export_via = http)" grep -q 'bytes streamed into the conversion' "$DIR/sync.log"
alog=$STACK/log/nginx-access.log
check "the export POST carries the browser's user agent" grep -q '"POST /index.php?route=/export .*HeadlessChrome' "$alog"
check "no browser left after success" no_browser
is "no temp folders left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0

# 2. /fetch-data equals the table, value for value.
api "$URL/fetch-data" -o "$DIR/fetch.json"
sql -e "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='$PMA_DB' AND TABLE_NAME='$PMA_TABLE' ORDER BY ORDINAL_POSITION" > "$DIR/cols.txt"
sel=$(sed 's/.*/CAST(`&` AS CHAR)/' "$DIR/cols.txt" | paste -sd, -)
sql "$PMA_DB" -e "SELECT JSON_ARRAY($sel) FROM \`$PMA_TABLE\` ORDER BY id" > "$DIR/rows.jsonl"
"$TOP/build/cmp-rows" "$DIR/fetch.json" "$DIR/rows.jsonl" "$DIR/cols.txt" > "$DIR/cmp.out" 2>&1
rc=$?
is "fetch-data equals MariaDB ($(tail -n1 "$DIR/cmp.out"))" "$rc" 0
# variant NAME SED: a config derived from the main one. via_browser NAME [SED]: the same with
# export_via = browser (the browser's own download).
variant() {
	sed "$2" "$CONF" > "$DIR/$1.conf"
	echo "$DIR/$1.conf"
}
via_browser() { variant "$1" "${2:-}${2:+; }s|^sync_timeout = .*|&\nexport_via = browser|"; }
# 2a. The browser's own download (export_via = browser) gives the same cache.
"$SYNC" -c "$(via_browser browser)" --force 2>"$DIR/browser.log"
is "export_via = browser: sync exits 0" "$?" 0
check "export_via = browser: the browser downloaded the file (no stream)" grep -q 'phase download rows=-1 bytes=[1-9]' "$DIR/browser.log"
check "export_via = browser: nothing streamed" test "$(grep -c 'bytes streamed' "$DIR/browser.log")" = 0
api "$URL/fetch-data" -o "$DIR/fetch-browser.json"
"$TOP/build/cmp-rows" "$DIR/fetch-browser.json" "$DIR/rows.jsonl" "$DIR/cols.txt" > "$DIR/cmp-browser.out" 2>&1
rc=$?
is "export_via = browser: fetch-data equals MariaDB ($(tail -n1 "$DIR/cmp-browser.out"))" "$rc" 0
is "count is the table's" "$(jq .count "$DIR/fetch.json")" "$(sql "$PMA_DB" -e "SELECT COUNT(*) FROM $PMA_TABLE")"
check "SQL NULL arrives as null" jq -e '[.data[] | select(.note == null)] | length > 0' "$DIR/fetch.json"
check "'NULL' arrives as a string" jq -e '[.data[] | select(.note == "NULL")] | length > 0' "$DIR/fetch.json"
check "'' arrives as an empty string" jq -e '[.data[] | select(.note == "")] | length > 0' "$DIR/fetch.json"
check "CRLF, CR, TAB and backslash survive" jq -e '[.data[] | select(.note == "windows line\r\nsecond line" or .note == "bare\rcarriage return" or .note == "tab\there, backslash \\ and \\N and \\\\")] | length >= 3' "$DIR/fetch.json"
st=$(api "$URL/status")
is "status: last sync success" "$(jq -r .last_sync.result <<<"$st")" success
is "status: rows" "$(jq .last_sync.rows <<<"$st")" "$ROWS"

# 3. Single flight with a real sync: /refresh starts one; CLI and /refresh meanwhile don't.
etag0=$(jq -r .etag <<<"$st")
is "POST /refresh triggers" "$(api -X POST "$URL/refresh" | jq -r .status)" triggered
check "the sync holds the lock" wait_for 10 sync_running
"$SYNC" -c "$CONF" 2>"$DIR/second.log"
is "second sync while one runs: exit 9" "$?" 9
check "it says already running" grep -q 'already running' "$DIR/second.log"
is "/refresh during a sync" "$(api -X POST "$URL/refresh" | jq -r .status)" "already in progress"
wait_idle
st=$(api "$URL/status")
is "background sync succeeded" "$(jq -r .last_sync.result <<<"$st")" success
check "new snapshot served" test "$(jq -r .etag <<<"$st")" != "$etag0"
check "no browser left after /refresh" no_browser

# The user the sync runs as: pmacache when the test runs as root, else the test's own.
want_user=$(id -u)
[ "$want_user" = 0 ] && want_user=$(id -u "$PMC_USER")
want_uids="$want_user $want_user $want_user $want_user"
unshare_ok() { if [ "$(id -u)" = 0 ]; then runuser -u "$PMC_USER" -- unshare -U true; else unshare -U true; fi 2>/dev/null; }
# 3a. Children inherit nothing they shouldn't: no lock, no FastCGI socket in the driver or
# the browser. Looked at while a /refresh sync runs.
is "refresh for the fd check" "$(api -X POST "$URL/refresh" | jq -r .status)" triggered
leak=0 seen=0 mine=0 asroot="" nosandbox=0
for i in $(seq 100); do
	for p in $(our_browsers chromedriver) $(our_browsers chromium); do
		seen=$((seen + 1))
		# Other instances' browsers (other test runs on this machine) are not ours to judge.
		grep -qx "$p" <<<"$(descendants "$(cat "$DIR/run/pmacache-fcgi.pid")")" || continue
		mine=$((mine + 1))
		# Least privilege: the driver and the browser run as the sync's user, never root,
		# and Chromium keeps its own sandbox (this kernel allows user namespaces).
		u=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$p/status" 2>/dev/null) || continue
		[ -z "$u" ] || [ "$u" = "$want_uids" ] || asroot+="$p:$u "
		tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -qx -- --no-sandbox && nosandbox=$((nosandbox + 1))
		for l in /proc/$p/fd/*; do
			t=$(readlink "$l" 2>/dev/null) || continue
			case $t in *sync.lock*|*cache.lock*|*fcgi.sock*) leak=$((leak + 1)); echo "pid $p holds $t" >&2 ;; esac
		done
		# a socket inode shared with the responders would be the FastCGI socket
	done
	[ $seen -gt 3 ] && break
	sleep 0.1
done
check "driver and browser processes were inspected ($seen)" test "$seen" -gt 0
is "no lock or FastCGI socket in chromedriver/chromium" "$leak" 0
check "this instance's driver and browser were inspected ($mine)" test "$mine" -gt 0
is "chromedriver and chromium run as $(id -un "$want_user") (uids $want_uids)" "$asroot" ""
if unshare_ok; then
	is "Chromium keeps its sandbox: no --no-sandbox" "$nosandbox" 0
else
	skip "Chromium keeps its sandbox" "this kernel forbids unprivileged user namespaces"
fi
wait_idle
no_zombies "no zombies after the refreshes"

# 3b. SSE over a real sync: cached, the real phases, updated, done.
timeout 120 curl -sN -H "X-API-Key: $KEY" "$URL/fetch-data?stream=true&refresh=true&payload=none" -o "$DIR/sse"
is "SSE over a real sync: event order" "$(sse_kinds "$DIR/sse")" "retry cached progress updated done"
phases=$(sse_parse "$DIR/sse" | awk -F'\t' '$1=="progress"{print $3}' | jq -r .phase | uniq | paste -sd' ' -)
for p in login export download swap; do
	check "SSE progress reports $p ($phases)" grep -qw "$p" <<<"$phases"
done
is "SSE updated names the new snapshot" "$(sse_data "$DIR/sse" updated | jq -r .payload.etag)" "$(api "$URL/status" | jq -r .etag)"
check "no browser left after the SSE refresh" no_browser

# 4. Failures: own exit code, cache byte-identical, /status error, no browser left.
cp "$CACHE/data_cache.json" "$DIR/before.json"
expect_failure() { # name code conf pattern
	local name=$1 want=$2 conf=$3 pat=$4 rc
	"$SYNC" -c "$conf" 2>"$DIR/$name.log"
	rc=$?
	is "$name: exit $want" "$rc" "$want"
	check "$name: message" grep -q "$pat" "$DIR/$name.log"
	check "$name: cache unchanged" cmp -s "$DIR/before.json" "$CACHE/data_cache.json"
	check "$name: still served" cmp -s <(api "$URL/fetch-data") "$DIR/before.json"
	check "$name: /status shows the error" grep -q "$pat" <<<"$(api "$URL/status" | jq -r .last_sync.error)"
	check "$name: no browser left" no_browser
	is "$name: no temp folders left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0
}
(umask 077; echo "wrong-$RANDOM" > "$DIR/wrong_pw")
secret "$DIR/wrong_pw"
before=$(wc -l < "$alog")
expect_failure wrong-password 4 "$(variant wrongpw "s|^pma_password_file = .*|pma_password_file = $DIR/wrong_pw|")" "rejected the login"
is "wrong password: one login attempt (POSTs to phpMyAdmin)" "$(tail -n +$((before + 1)) "$alog" | grep -c '"POST ')" 1
cp "$PMA_PASSWORD_FILE" "$DIR/open_pw"; chmod 644 "$DIR/open_pw"
"$SYNC" -c "$(variant openpw "s|^pma_password_file = .*|pma_password_file = $DIR/open_pw|")" 2>"$DIR/openpw.log"
is "password file 0644: exit 2" "$?" 2
check "password file 0644: says chmod 600" grep -q 'chmod 600' "$DIR/openpw.log"
# The doctor against the real phpMyAdmin: --login logs in and finds the table's export page.
"$SYNC" -c "$CONF" --check --login > "$DIR/doctor.out" 2>&1
rc=$?
is "doctor --check --login: exit 0 ($(grep '^FAIL' "$DIR/doctor.out" | head -c 200))" "$rc" 0
check "doctor: phpMyAdmin reachable" grep -q "^OK   phpMyAdmin $PMA_URL: reachable (HTTP 200)" "$DIR/doctor.out"
check "doctor: the login works and the table exists" grep -q "^OK   phpMyAdmin login as $PMA_USER works, and $PMA_DB.$PMA_TABLE has an export page" "$DIR/doctor.out"
"$SYNC" -c "$(variant notable "s|^pma_table = .*|pma_table = no_such_table|")" --check --login > "$DIR/doctor-nt.out" 2>&1
is "doctor --login, no such table: exit 2" "$?" 2
check "doctor: the missing table is a FAIL ($(grep '^FAIL' "$DIR/doctor-nt.out" | head -c 200))" grep -q "^FAIL phpMyAdmin login as $PMA_USER, table $PMA_DB.no_such_table: " "$DIR/doctor-nt.out"
"$SYNC" -c "$DIR/wrongpw.conf" --check --login > "$DIR/doctor-pw.out" 2>&1
is "doctor --login, wrong password: exit 2" "$?" 2
check "doctor: the rejected login is a FAIL" grep -q "^FAIL phpMyAdmin login as $PMA_USER, table .*rejected the login.*(exit 4" "$DIR/doctor-pw.out"
check "no browser left after the doctor" no_browser
closed=$(free_port)
expect_failure port-closed 5 "$(variant closed "s|^pma_url = .*|pma_url = http://127.0.0.1:$closed/|")" "unreachable"
kill "$(cat "$STACK/php-fpm.pid")"
for i in $(seq 50); do kill -0 "$(cat "$STACK/php-fpm.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
expect_failure php-fpm-down 5 "$CONF" "phpMyAdmin is failing"
php-fpm8.2 -y "$STACK/php-fpm.conf" -c /etc/php/8.2/fpm/php.ini
hang=$(free_port)
nc -lk 127.0.0.1 "$hang" >/dev/null 2>&1 &
ncpid=$!
expect_failure pma-hangs 10 "$(variant hang "s|^pma_url = .*|pma_url = http://127.0.0.1:$hang/|; s|^sync_timeout = .*|sync_timeout = 6|")" "sync_timeout passed"
kill "$ncpid" 2>/dev/null
expect_failure no-chromedriver 3 "$(variant nodriver "s|^sync_bin = .*|&\nchromedriver = /nonexistent/chromedriver|")" "chromedriver"

# 4a. Faults in the middle of the export, through a fault proxy (nginx) in front of
# phpMyAdmin: it slows the export's answer down (so the test can act while it downloads),
# or ends it early, or answers it with a 500 page. Everything else passes through.
fp=$DIR/fault-proxy
mkdir -p "$fp"
slow_port=$(free_port) eof_port=$(free_port) err_port=$(free_port)
lost_port=$(free_port) never_port=$(free_port) page_port=$(free_port) html_port=$(free_port)
cat > "$fp/nginx.conf" <<CONF
pid $fp/nginx.pid;
error_log $fp/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $fp/cb; proxy_temp_path $fp/px; fastcgi_temp_path $fp/fc;
	uwsgi_temp_path $fp/uw; scgi_temp_path $fp/sc;
	map "\$request_method \$request_uri" \$is_export { "~^POST .*route=/export" 1; default ""; }
	map \$is_export \$export_rate { 1 20k; default 0; }
	proxy_max_temp_file_size 0; # buffers in memory only: no temp files
	proxy_set_header Host \$http_host;
	# Slow export, chunked: a cut leaves the browser with an unfinished download.
	server { listen 127.0.0.1:$slow_port; location / { limit_rate \$export_rate; proxy_pass $PMA_URL; } }
	# Slow export, ended by closing the connection: a cut looks like the end of the file.
	server { listen 127.0.0.1:$eof_port; chunked_transfer_encoding off;
		location / { limit_rate \$export_rate; proxy_pass $PMA_URL; } }
	# The table's export page slowed (export_via = http: the browser's part ends there).
	map \$request_uri \$page_rate { "~route=/table/export" 4k; default 0; }
	server { listen 127.0.0.1:$page_port; location / { limit_rate \$page_rate; proxy_pass $PMA_URL; } }
	# The export answered with an HTML page instead of the CSV.
	server { listen 127.0.0.1:$html_port; location / { default_type text/html;
		if (\$is_export) { return 200 "<!DOCTYPE html><html><body><h1>Maintenance</h1><p>Back soon.</p></body></html>"; }
		proxy_pass $PMA_URL; } }
	# The export answered with a 500 page.
	server { listen 127.0.0.1:$err_port; location / { if (\$is_export) { return 500; } proxy_pass $PMA_URL; } }
	# The clicks that do not submit (4b): phpMyAdmin's AJAX routes slowed, and the page
	# moved under the pointer the first time it reaches the login or the Export button.
	map \$request_uri \$ajax_rate { "~route=/(config/get|config/set|navigation|recent-table)" 3k; default 0; }
	server { listen 127.0.0.1:$lost_port; proxy_set_header Accept-Encoding ""; proxy_set_header Host \$http_host;
		sub_filter_once on;
		sub_filter '</body>' "<script>(function(){var done={};document.addEventListener('mousemove',function(e){['input_go','buttonGo'].forEach(function(id){var g=document.getElementById(id);if(done[id]||!g||!g.contains(e.target))return;done[id]=1;var s=document.createElement('div');s.style.height='48px';g.parentNode.insertBefore(s,g);});},true);})();</script></body>";
		location / { limit_rate \$ajax_rate; proxy_pass $PMA_URL; } }
	# An export form whose every submission a page script cancels (4b).
	server { listen 127.0.0.1:$never_port; proxy_set_header Accept-Encoding ""; proxy_set_header Host \$http_host;
		sub_filter_once on;
		sub_filter '</body>' "<script>document.addEventListener('submit',function(e){if(e.target.name==='dump')e.preventDefault();});</script></body>";
		location / { proxy_pass $PMA_URL; } }
}
CONF
nginx -c "$fp/nginx.conf" -p "$fp" || notok "fault proxy starts"
trap 'nginx -c "$fp/nginx.conf" -p "$fp" -s stop 2>/dev/null; inst_down; stack_down' EXIT
via() { variant "$1" "s|^pma_url = .*|pma_url = http://127.0.0.1:$2/|"; }
# when_downloading CMD...: in the background, run CMD once the export is arriving: the
# browser's download passed 50 KB, or (export_via = http) the streamed body reached the
# converter (its snapshot folder is there).
when_downloading() {
	(for i in $(seq 900); do
		{ [ -n "$(find "$CACHE" -path '*/downloads/*.crdownload' -size +50k 2>/dev/null)" ] ||
			[ -n "$(find "$CACHE" -path '*/tmp.snap.*/data_cache.json' 2>/dev/null)" ]; } && { "$@"; exit; }
		sleep 0.1
	done) &
}
# when_phase PHASE CMD...: in the background, run CMD once the sync reports PHASE.
when_phase() {
	local ph=$1
	shift
	(for i in $(seq 900); do
		[ "$(jq -r .phase "$CACHE/progress.json" 2>/dev/null)" = "$ph" ] && { "$@"; exit; }
		sleep 0.1
	done) &
}
kill_browser() { pkill -9 -x -P "$(our_browsers chromedriver | paste -sd, -)" chromium; }
# While the browser runs: which argv or environment on the machine holds a secret? (grep -f,
# so the secrets are not in grep's own argv.)
(umask 077; printf '%s\n' "$(cat "$PMA_PASSWORD_FILE")" "$KEY" > "$DIR/secrets")
scan_then_kill() {
	our_browsers chromium > "$DIR/scanned"
	for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do
		grep -qaFf "$DIR/secrets" "$f" 2>/dev/null && echo "$f"
	done > "$DIR/proc-hits"
	kill_browser
}
cut_proxy() { pkill -9 -P "$(cat "$fp/nginx.pid")"; } # its workers: the connections drop
# export_via = http (the default): the browser crashes while it opens the export page (slowed
# by the proxy), where it logs in.
when_phase login scan_then_kill
expect_failure browser-crash 3 "$(via crash "$page_port")" "the browser failed"
wait
check "argv and environments were scanned while Chromium ran ($(wc -l < "$DIR/scanned") processes)" test -s "$DIR/scanned"
is "no argv or environment holds the password or the key" "$(cat "$DIR/proc-hits")" ""
# export_via = browser: the browser crashes during its download.
when_downloading kill_browser
expect_failure browser-crash-download 3 "$(via_browser crashdl "s|^pma_url = .*|pma_url = http://127.0.0.1:$slow_port/|")" "the browser failed"
wait
# Cut in the middle of the body: HTTP says so (the chunked body never ended).
when_downloading cut_proxy
expect_failure cut-chunked 6 "$(via cut "$slow_port")" "export download was cut off after [1-9][0-9]* bytes"
wait
check "cut-chunked: nothing was converted into a snapshot" test "$(grep -c 'phase swap' "$DIR/cut-chunked.log")" = 0
when_downloading cut_proxy
expect_failure cut-chunked-browser 6 "$(via_browser cutb "s|^pma_url = .*|pma_url = http://127.0.0.1:$slow_port/|")" "export download was cut off"
wait
# Stop means stop while the export streams in: SIGTERM, exit 10, the old snapshot served.
term_sync() { kill -TERM "$(jq -r .pid "$CACHE/progress.json")"; }
when_downloading term_sync
expect_failure term-streaming 10 "$(via term "$slow_port")" "stopped by a signal"
wait
# An answer ended by closing the connection: no length, no chunks; the missing line end is
# what shows the cut.
when_downloading cut_proxy
expect_failure cut-eof 7 "$(via eof "$eof_port")" "the export ends without a line end"
wait
when_downloading cut_proxy
expect_failure cut-eof-browser 7 "$(via_browser eofb "s|^pma_url = .*|pma_url = http://127.0.0.1:$eof_port/|")" "the export ends without a line end"
wait
expect_failure export-500 5 "$(via e500 "$err_port")" "phpMyAdmin is failing.*500 Internal Server Error"
expect_failure export-html 7 "$(via html "$html_port")" "the export answered text/html instead of CSV.*Maintenance Back soon"
# phpMyAdmin's own silent cut: a query that fails at 40 % of the streamed export ends
# the CSV there, well-formed. The shrink guard (min_rows_ratio 0.5) refuses it.
cut_id=$(sql "$PMA_DB" -e "SELECT id FROM $PMA_TABLE ORDER BY id LIMIT 1 OFFSET $((ROWS * 2 / 5))")
sql "$PMA_DB" -e "CREATE OR REPLACE VIEW ${PMA_TABLE}_cut AS SELECT id, IF(id = $cut_id, (SELECT 1 UNION SELECT 2), note) AS note FROM $PMA_TABLE"
expect_failure pma-cut-short 7 "$(variant pmacut "s|^pma_table = .*|pma_table = ${PMA_TABLE}_cut|")" "fewer than min_rows_ratio"

# 4b. Every step progresses or fails fast: the Export click that does not submit. When
# config/get answers, phpMyAdmin's SQL console starts, collapses and shrinks the page's
# bottom margin; the page, scrolled to the Export button near its end, moves by 32 to 100 px.
# A click that chromedriver measured before the move and Chromium hit-tests after it lands
# beside the button: no submit, no POST, and the sync used to wait for a download until
# sync_timeout. The real window is milliseconds wide; the proxy makes it certain: it slows
# phpMyAdmin's AJAX routes and moves the page under the pointer the first time the pointer
# reaches the Export button (between the measuring and the press), and the login button the
# same way. The sync must see within seconds that nothing went out, let phpMyAdmin's requests
# settle, read the form again and submit it again, logging each attempt. Only the browser's
# own download clicks Export: these run with export_via = browser.
posts() { tail -n +$(($1 + 1)) "$alog" | grep -c '"POST /index.php?route=/export '; }
before=$(wc -l < "$alog")
expect_failure never-submits 6 "$(via_browser never "s|^pma_url = .*|pma_url = http://127.0.0.1:$never_port/|; s|^sync_timeout = .*|sync_timeout = 60|")" "the export did not start"
is "never-submits: each of the 3 attempts logged" "$(grep -c 'did not go out' "$DIR/never-submits.log")" 3
check "never-submits: the log says a page script cancelled the submission" grep -q 'submit events: 1, prevented: 1' "$DIR/never-submits.log"
is "never-submits: no export POST reached phpMyAdmin" "$(posts "$before")" 0
before=$(wc -l < "$alog")
"$SYNC" -c "$(via_browser lost "s|^pma_url = .*|pma_url = http://127.0.0.1:$lost_port/|; s|^sync_timeout = .*|sync_timeout = 60|")" 2>"$DIR/lost.log"
is "lost Export click: the sync succeeds" "$?" 0
check "lost Export click: attempt 1 logged: the click was beside the button, no submit event" grep -q 'attempt 1 of 3 did not go out.*clicks seen: div@.*submit events: 0' "$DIR/lost.log"
check "lost Export click: the second attempt went out" grep -q 'attempt 2 went out' "$DIR/lost.log"
is "lost Export click: one export POST reached phpMyAdmin" "$(posts "$before")" 1
check "lost login click: attempt 1 logged, the form submitted again" grep -q 'login: attempt 1 of 3 did not go out.*submitting the form again' "$DIR/lost.log"
is "lost login click: one login POST reached phpMyAdmin" "$(tail -n +$((before + 1)) "$alog" | grep -c '"POST /index.php?route=/table/export')" 1
is "lost Export click: /status says success" "$(api "$URL/status" | jq -r .last_sync.result)" success
check "lost Export click: no browser left" no_browser
is "lost Export click: no temp folders left" "$(ls "$CACHE" | grep -c '^tmp\.')" 0

# 5. The password and the keys never reach logs, argv or environments.
pw=$(cat "$PMA_PASSWORD_FILE")
hits=$(grep -rlF -e "$pw" -e "$KEY" "$DIR"/*.log "$DIR/run/log" "$STACK/log" 2>/dev/null | wc -l)
is "no secret in any log" "$hits" 0
finish
