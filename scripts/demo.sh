#!/bin/bash
# make run / make stop: the demo. Generates a sample phpMyAdmin export, imports it and
# serves it on 127.0.0.1:8080 from ./demo (config, key, cache, logs).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
demo=$here/demo
conf=$demo/pmacache.conf

stop() {
	[ -f "$conf" ] && "$here/scripts/pmacache" -c "$conf" stop || true
}

run() {
	mkdir -p "$demo"
	if [ ! -f "$demo/api_keys" ]; then
		(umask 077; { echo "# pmacache API keys, one per line"; head -c 32 /dev/urandom | base64 | tr -d '=+/'; } > "$demo/api_keys")
	fi
	if [ ! -f "$conf" ]; then
		cat > "$conf" <<CONF
# pmacache demo configuration (see pmacache.conf.sample for every key)
listen = 127.0.0.1:8080
cache_dir = cache
run_dir = run
api_keys_file = api_keys
sync_bin = $here/sync/pmacache-sync
CONF
	fi
	stop
	echo "== generating a sample export of 102052 orders"
	"$here/build/gen-orders" -n 102052 csv > "$demo/orders.csv"
	echo "== importing it"
	"$here/sync/pmacache-sync" -c "$conf" --csv "$demo/orders.csv" --force
	"$here/scripts/pmacache" -c "$conf" start
	key=$(grep -v '^#' "$demo/api_keys" | head -n 1)
	cat <<MSG

pmacache is serving the demo data on http://127.0.0.1:8080
API key (in $demo/api_keys): $key

  curl -s http://127.0.0.1:8080/health
  curl -s -H "X-API-Key: $key" http://127.0.0.1:8080/status
  curl -s -H "X-API-Key: $key" http://127.0.0.1:8080/fetch-data | head -c 400
  curl -s -X POST -H "X-API-Key: $key" http://127.0.0.1:8080/refresh

Stop it with: make stop
MSG
}

case ${1:-run} in
run) run ;;
stop) stop ;;
*) echo "usage: demo.sh run|stop" >&2; exit 2 ;;
esac
