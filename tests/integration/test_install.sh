#!/bin/bash
# Installing like Debian software. (1) make install into a DESTDIR: the files, the man pages
# (mandoc -Tlint), the units (systemd-analyze verify), logrotate's file; make uninstall keeps
# config and cache. (2) The README's install block, run as written on this machine (only its
# first two lines, the reader's own values, are this test's): create the user, install into
# /usr/local, include the drop-in in an existing nginx site (the system nginx, on a site of
# the test's own on 127.0.0.1), sync from a real phpMyAdmin, serve /fetch-data through that
# site; then make uninstall. Root only: it installs into the real system, and puts back what
# it found.
. "$(dirname "$0")/../lib.sh"
if [ "$(id -u)" != 0 ]; then skip "install" "not root"; finish; fi
T=$TMPBASE/install
rm -rf "$T"
mkdir -p "$T"

# --- 1. DESTDIR -----------------------------------------------------------------------
D=$T/dest
make -C "$TOP" --no-print-directory -s install DESTDIR="$D" >"$T/make-install.log" 2>&1
is "make install DESTDIR: exit 0" "$?" 0
want="/usr/local/bin/pmacache-fcgi /usr/local/bin/pmacache-sync /usr/local/bin/pmacache
/usr/local/share/pmacache/nginx/pmacache-locations.conf.in /usr/local/share/pmacache/proc.sh
/usr/local/share/man/man8/pmacache-fcgi.8 /usr/local/share/man/man8/pmacache-sync.8
/usr/local/share/man/man5/pmacache.conf.5 /etc/systemd/system/pmacache.service
/etc/systemd/system/pmacache-sync.service /etc/systemd/system/pmacache-sync.timer
/etc/cron.d/pmacache /etc/logrotate.d/pmacache /etc/pmacache/pmacache.conf
/etc/nginx/conf.d/pmacache.conf /etc/nginx/snippets/pmacache.conf"
missing=""
for f in $want; do [ -s "$D$f" ] || missing+=" $f"; done
is "DESTDIR: every file installed" "${missing# }" ""
is "DESTDIR: state and log folders 0750 pmacache" "$(stat -c '%a %U' "$D/var/lib/pmacache" "$D/var/log/pmacache" | sort -u)" "750 $PMC_USER"
check "DESTDIR: the pmacache script runs the installed executables" grep -qx 'installed_bindir=/usr/local/bin' "$D/usr/local/bin/pmacache"
check "DESTDIR: the config is the commented sample" cmp -s "$TOP/pmacache.conf.sample" "$D/etc/pmacache/pmacache.conf"
cronline=$(grep -v '^#' "$D/etc/cron.d/pmacache" | grep pmacache-sync)
is "DESTDIR: cron runs the installed sync as pmacache" "$(awk '{ print $6, $7 }' <<<"$cronline")" "pmacache /usr/local/bin/pmacache-sync"
check "DESTDIR: the drop-in names the FHS socket" grep -q 'server unix:/run/pmacache/fcgi.sock;' "$D/etc/nginx/conf.d/pmacache.conf"
# Linted where they sit together (mandoc resolves .Xr between them there); the installed
# copies are the same files. "outdated mandoc.db" lines are about this machine's index.
lint=$(cd "$TOP/man" && mandoc -Tlint pmacache-fcgi.8 pmacache-sync.8 pmacache.conf.5 2>&1 | grep -v 'outdated mandoc.db')
is "man pages: mandoc -Tlint has nothing to say" "$lint" ""
check "the installed man pages are those" cmp -s "$TOP/man/pmacache.conf.5" "$D/usr/local/share/man/man5/pmacache.conf.5"
check "man pages render" sh -c "mandoc -Tascii '$D/usr/local/share/man/man5/pmacache.conf.5' | sed 's/.\x08//g' | grep -q location_prefix"
check "logrotate accepts its file" logrotate -d "$D/etc/logrotate.d/pmacache"
echo "# an admin's edit" >> "$D/etc/pmacache/pmacache.conf"
make -C "$TOP" --no-print-directory -s install DESTDIR="$D" >"$T/make-install2.log" 2>&1
check "make install again keeps the admin's config" grep -q "an admin's edit" "$D/etc/pmacache/pmacache.conf"
echo '{}' > "$D/var/lib/pmacache/status.json"
make -C "$TOP" --no-print-directory -s uninstall DESTDIR="$D" >"$T/make-uninstall.log" 2>&1
is "make uninstall DESTDIR: exit 0" "$?" 0
is "make uninstall: only the config, the cache and the logs are left" "$(cd "$D" && find . -type f | sort | paste -sd' ')" "./etc/pmacache/pmacache.conf ./var/lib/pmacache/status.json"

# --- 2. The README, on this machine ----------------------------------------------------
# Only where nothing of pmacache is installed and the system nginx is not running: the test
# puts everything back afterwards, so it must find nothing of anyone else's.
if [ -e /etc/pmacache ] || [ -e /usr/local/bin/pmacache-fcgi ] || [ -e /etc/nginx/conf.d/pmacache.conf ] ||
	{ [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; } || [ ! -d /etc/nginx/sites-enabled ]; then
	skip "the README's install on this machine" "pmacache is installed here already, or the system nginx runs"
	finish
fi
STACK=$T/stack
bash "$TOP/scripts/pma-stack.sh" up "$STACK" 300 >"$T/stack.log" 2>&1 || { notok "demo phpMyAdmin up" "see $T/stack.log"; finish; }
. "$STACK/stack.env"
port=$(free_port)
site=/etc/nginx/sites-enabled/pmacache-install-test
mkdir -p "$T/saved" "$T/www"
echo "the shop's front page" > "$T/www/index.html"
chmod -R a+rX "$T/www"
cleanup() {
	[ -x /usr/local/bin/pmacache ] && /usr/local/bin/pmacache -c /etc/pmacache/pmacache.conf stop >/dev/null 2>&1
	[ -s /run/nginx.pid ] && stop_pid /run/nginx.pid
	make -C "$TOP" --no-print-directory -s uninstall >/dev/null 2>&1
	rm -rf /etc/pmacache /var/lib/pmacache /var/log/pmacache /run/pmacache "$site"
	[ -e "$T/saved/default" ] && mv "$T/saved/default" /etc/nginx/sites-enabled/default
	bash "$TOP/scripts/pma-stack.sh" down "$STACK" >/dev/null 2>&1
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
# The existing site: the only enabled one while the test runs (Debian's default listens on
# every address at port 80; it comes back afterwards).
[ -e /etc/nginx/sites-enabled/default ] && mv /etc/nginx/sites-enabled/default "$T/saved/default"
cat > "$site" <<SITE
server {
	listen 127.0.0.1:$port;
	root $T/www;
	index index.html;
	server_name localhost;
	location / { try_files \$uri \$uri/ =404; }
}
SITE
nginx || { notok "the existing site starts"; finish; }
is "the existing site serves its page" "$(curl -s "http://127.0.0.1:$port/")" "the shop's front page"

# The README's block, its first two lines replaced by this machine's values.
awk '/^<!-- install:/ { f = 1; next } f && /^```sh/ { g = 1; next } g && /^```/ { exit } g' "$TOP/README.md" > "$T/readme.sh"
check "the README has an install block" test "$(wc -l < "$T/readme.sh")" -gt 10
{
	echo "pma_url=$PMA_URL pma_user=$PMA_USER pma_db=$PMA_DB pma_table=$PMA_TABLE"
	echo "site=$site url=http://127.0.0.1:$port/"
	tail -n +3 "$T/readme.sh"
} > "$T/run.sh"
is "the README's first two lines are the reader's values" "$(head -n 2 "$T/readme.sh" | cut -d= -f1 | paste -sd' ')" "pma_url site"
(cd "$TOP" && bash -euo pipefail "$T/run.sh" < <(cat "$PMA_PASSWORD_FILE"; echo)) >"$T/readme.out" 2>"$T/readme.err"
is "the README's install block runs as written: exit 0 (log: $T/readme.err)" "$?" 0
check "its last command prints the data through the site ($(tail -n 1 "$T/readme.out"))" jq -e '.status == "success" and .count == 300' <(tail -n 1 "$T/readme.out")
key=$(head -n 1 /etc/pmacache/api_keys)
S=http://127.0.0.1:$port
is "the site still serves its own page" "$(curl -s "$S/")" "the shop's front page"
curl -s -H "X-API-Key: $key" "$S/fetch-data" -o "$T/fetch.json"
is "/fetch-data through the site: the table's rows" "$(jq .count "$T/fetch.json")" 300
is "/health through the site" "$(curl -s "$S/health" | jq -r .status)" healthy
resp=$(cat /run/pmacache/pmacache-fcgi.pid)
is "the responders are the installed executable" "$(readlink "/proc/$resp/exe")" /usr/local/bin/pmacache-fcgi
is "they run as pmacache" "$(stat -c %U "/proc/$resp")" "$PMC_USER"
is "the first sync (started as root) wrote as pmacache" "$(stat -c %U /var/lib/pmacache/status.json)" "$PMC_USER"
is "the keys and password files: 0640 root:pmacache" "$(stat -c '%a %U:%G' /etc/pmacache/api_keys /etc/pmacache/pma_password | sort -u)" "640 root:$PMC_USER"
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify --man=no /etc/systemd/system/pmacache.service \
		/etc/systemd/system/pmacache-sync.service /etc/systemd/system/pmacache-sync.timer 2>&1 |
		grep -v 'sysinit.target not found')
	is "systemd-analyze verify: the units are clean" "$out" ""
else
	skip "systemd-analyze verify" "systemd-analyze is not installed"
fi
/usr/local/bin/pmacache -c /etc/pmacache/pmacache.conf stop >/dev/null
make -C "$TOP" --no-print-directory -s uninstall >"$T/uninstall.log" 2>&1
is "make uninstall: exit 0" "$?" 0
left=""
for f in $want; do case $f in /etc/pmacache/*) ;; *) [ -e "$f" ] && left+=" $f" ;; esac; done
is "make uninstall removes what it installed" "${left# }" ""
check "make uninstall keeps the config and the keys" test -s /etc/pmacache/pmacache.conf -a -s /etc/pmacache/api_keys
check "make uninstall keeps the cache" test -s /var/lib/pmacache/data_cache.json
finish
