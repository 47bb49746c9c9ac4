#!/bin/bash
# make run / make stop: the demo. Brings up a demo phpMyAdmin stack (MariaDB, php-fpm,
# nginx + Debian's phpMyAdmin) with 102052 synthetic orders, runs a first real sync through
# headless Chromium, and serves the API on 127.0.0.1:8080. Everything lives in ./demo.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
demo=$here/demo
# nginx workers (www-data) and MariaDB (mysql) must reach the demo folder.
if [ "$(id -u)" = 0 ] && ! runuser -u www-data -- test -x "$here" 2>/dev/null; then
	demo=/var/tmp/pmacache-demo
fi
conf=$demo/pmacache.conf
rows=${DEMO_ROWS:-102052}

stop() {
	[ -f "$conf" ] && "$here/scripts/pmacache" -c "$conf" stop || true
	bash "$here/scripts/pma-stack.sh" down "$demo/stack" || true
}

run() {
	mkdir -p "$demo"
	stop >/dev/null 2>&1
	# As root, pmacache runs as its own user (see README, "Installing on a LAMP host").
	. "$here/scripts/proc.sh"
	ensure_pmacache_user
	echo "== demo phpMyAdmin stack with $rows orders (in $demo/stack)"
	bash "$here/scripts/pma-stack.sh" up "$demo/stack" "$rows"
	. "$demo/stack/stack.env"
	if [ ! -f "$demo/api_keys" ]; then
		(umask 077; { echo "# pmacache API keys, one per line"; head -c 32 /dev/urandom | base64 | tr -d '=+/'; } > "$demo/api_keys")
	fi
	secret_file "$demo/api_keys"
	cat > "$conf" <<CONF
# pmacache demo configuration (see pmacache.conf.sample for every key)
listen = 127.0.0.1:8080
cache_dir = cache
run_dir = run
api_keys_file = api_keys
sync_bin = $here/sync/pmacache-sync
CONF
	cat "$demo/stack/pmacache-pma.conf" >> "$conf"
	# The sync runs as pmacache (it drops to it when started as root): its cache_dir is its.
	mkdir -p "$demo/cache"
	[ "$(id -u)" = 0 ] && chown pmacache:pmacache "$demo/cache"
	chmod 750 "$demo/cache"
	echo "== first sync from phpMyAdmin through headless Chromium"
	"$here/sync/pmacache-sync" -c "$conf" --force
	# The operator's dashboard, served by the same nginx (so no CORS is needed).
	mkdir -p "$demo/run"
	install -m 644 "$here/examples/status.html" "$demo/status.html"
	echo "location = /status.html { alias $demo/status.html; }" > "$demo/run/local-status.conf"
	"$here/scripts/pmacache" -c "$conf" start
	key=$(grep -v '^#' "$demo/api_keys" | head -n 1)
	cat <<MSG

pmacache is serving the demo data on http://127.0.0.1:8080
phpMyAdmin (the source) is on $PMA_URL (user $PMA_USER, password in $PMA_PASSWORD_FILE)
API key (in $demo/api_keys): $key

  curl -s http://127.0.0.1:8080/health
  curl -s -H "X-API-Key: $key" http://127.0.0.1:8080/status
  curl -s -H "X-API-Key: $key" http://127.0.0.1:8080/fetch-data | head -c 400
  curl -s -X POST -H "X-API-Key: $key" http://127.0.0.1:8080/refresh
  curl -sN -H "X-API-Key: $key" 'http://127.0.0.1:8080/fetch-data?stream=true&refresh=true' | cut -c1-160

Dashboard: http://127.0.0.1:8080/status.html (paste the key)
Clients:   PMACACHE_URL=http://127.0.0.1:8080 PMACACHE_KEY=<the key> python3 examples/client.py
           (or node examples/client.mjs, or sh examples/curl.sh)

Stop it with: make stop
MSG
}

case ${1:-run} in
run) run ;;
stop) stop ;;
*) echo "usage: demo.sh run|stop" >&2; exit 2 ;;
esac
