# Shared helpers for the integration tests (bash). Each test script prints "ok - NAME" or
# "not ok - NAME: why" per behaviour; tests/run-all.sh counts them.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PMACACHE=$TOP/scripts/pmacache
SYNC=$TOP/sync/pmacache-sync
GEN=$TOP/build/gen-orders
T_FAILS=0
. "$TOP/scripts/proc.sh"
# Test runtime folders: tests/tmp, unless the checkout is not reachable by the service users
# (nginx workers run as www-data, MariaDB as mysql); then a folder under /tmp.
TMPBASE=$TOP/tests/tmp
if [ "$(id -u)" = 0 ] && ! runuser -u www-data -- test -x "$TOP/tests" 2>/dev/null; then
	TMPBASE=/tmp/pmacache-tests
fi
mkdir -p "$TMPBASE"

# As root (CI), pmacache runs as its own system user, as the README's install creates it:
# the responders, every sync, chromedriver and Chromium run as `pmacache`, and nginx's
# workers (www-data) reach the socket and the snapshots as members of its group.
PMC_USER=pmacache
ensure_user() {
	ensure_pmacache_user || { echo "not ok - cannot create user $PMC_USER"; exit 1; }
}
ensure_user
# secret FILE: mode 0640, owner root, group pmacache (as root); 0600 otherwise.
secret() { secret_file "$1"; }
# descendants PID: the process and all its descendants, one pid a line.
descendants() {
	ps -eo pid=,ppid= | awk -v r="$1" '{ kids[$2] = kids[$2] " " $1 }
		END { n = split(r, q, " "); for (i = 1; i <= n; i++) { print q[i]; m = split(kids[q[i]], k, " "); for (j = 1; j <= m; j++) q[++n] = k[j] } }'
}

ok() { echo "ok - $1"; }
# skip NAME WHY: a check that could not run here. Counted as skipped, never as passed; under
# CI a skip fails the run unless EXPECTED_SKIPS (in .ci/run) names it.
skip() { echo "skip - $1${2:+: $2}"; }
notok() { echo "not ok - $1${2:+: $2}"; T_FAILS=$((T_FAILS + 1)); }
# check NAME COMMAND...: ok when the command succeeds.
check() { local n=$1; shift; if "$@" >/dev/null 2>&1; then ok "$n"; else notok "$n" "failed: $*"; fi; }
# is NAME GOT WANT
is() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "got '$2', want '$3'"; fi; }

# inst_up NAME [extra config lines]: a fresh instance in tests/tmp/NAME, started.
# Sets DIR, CONF, KEY, PORT, URL, CACHE.
inst_up() {
	DIR=$TMPBASE/$1
	[ -d "$DIR" ] && { "$PMACACHE" -c "$DIR/pmacache.conf" stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
	mkdir -p "$DIR"
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	CONF=$DIR/pmacache.conf
	CACHE=$DIR/cache
	KEY=$(head -c 24 /dev/urandom | base64 | tr -d '=+/')
	(umask 077; printf '# test key\n%s\n' "$KEY" > "$DIR/api_keys")
	secret "$DIR/api_keys"
	{
		echo "listen = 127.0.0.1:$PORT"
		echo "cache_dir = cache"
		echo "api_keys_file = api_keys"
		echo "run_dir = run"
		grep -q '^sync_bin' <<<"${2:-}" || echo "sync_bin = $SYNC"
		# All test traffic comes from 127.0.0.1: the per-client limits would throttle the
		# tests themselves. test_limits.sh tests them at their defaults.
		grep -q '^limit_' <<<"${2:-}" || printf '%s\n' "limit_bad_keys_per_min = 1000000" \
			"limit_bad_keys_burst = 100000" "limit_refresh_per_min = 1000000" \
			"limit_refresh_burst = 100000" "limit_streams_per_client = 10000" \
			"limit_conn_per_client = 60000"
		echo "${2:-}"
	} > "$CONF"
	"$PMACACHE" -c "$CONF" start >/dev/null || { notok "start $1"; exit 1; }
	trap inst_down EXIT
}

inst_down() {
	[ -n "${CONF:-}" ] && "$PMACACHE" -c "$CONF" stop >/dev/null 2>&1 || true
}

# get PATH [curl args...]: body to stdout; HTTP code in $CODE (via a file).
api() { curl -s -H "X-API-Key: $KEY" "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# site_nginx DIR HTTP SERVER: DIR/nginx.conf for a host's own nginx (a LAMP site), with HTTP
# added inside http { } and SERVER inside its one server { }; its pid, logs and temp folders
# in DIR, its workers www-data's when run as root. DIR/www is its document root.
site_nginx() {
	local site=$1 user=""
	mkdir -p "$site/www" "$site/tmp"
	[ "$(id -u)" = 0 ] && user="user www-data www-data;"
	cat > "$site/nginx.conf" <<CONF
$user
pid $site/nginx.pid;
error_log $site/error.log;
events { worker_connections 64; }
http {
	include /etc/nginx/mime.types;
	access_log $site/access.log;
	client_body_temp_path $site/tmp/cb; fastcgi_temp_path $site/tmp/fc; proxy_temp_path $site/tmp/px;
	uwsgi_temp_path $site/tmp/uw; scgi_temp_path $site/tmp/sc;
	$2
	server {
		root $site/www;
		$3
	}
}
CONF
	[ "$(id -u)" = 0 ] && chown -R www-data "$site/tmp"
	chmod -R a+rX "$site"
}

# sync_running: whether /status says a sync runs (for wait_for).
sync_running() { [ "$(api "$URL/status" | jq .update_in_progress)" = true ]; }

# wait_idle: until no sync runs (at most 30 s).
wait_idle() {
	local i
	for i in $(seq 300); do
		[ "$(api "$URL/status" | jq .update_in_progress)" = false ] && return 0
		sleep 0.1
	done
	return 1
}

# zombies: zombie processes whose parent is one of this instance's: its responders, its syncs
# (and so the browsers they start). Zombies of another test or suite on the machine are not
# ours to count, even when they are named pmacache-sync too.
zombies() {
	local ours
	ours=$(pgrep -f -- "-c ${CONF:-/nonexistent}( |$)" | paste -sd'|' -)
	ps -eo stat=,ppid= | awk -v r="^(${ours:-none})\$" '$1 ~ /^Z/ && $2 ~ r' | wc -l
}

# no_zombies NAME: a child that just ended is reaped a moment later: wait for that (at most
# 10 s), then check that none of ours is left.
no_zombies() {
	local i
	for i in $(seq 100); do [ "$(zombies)" = 0 ] && break; sleep 0.1; done
	is "$1" "$(zombies)" 0
}

finish() {
	exit $((T_FAILS > 0))
}

# sse_parse FILE: one line per SSE block, "kind<TAB>id<TAB>data", kind being the event name,
# "retry" or "comment".
sse_parse() {
	awk 'BEGIN { RS = ""; FS = "\n" }
	{
		ev = ""; id = ""; data = ""
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^event: /) ev = substr($i, 8)
			else if ($i ~ /^id: /) id = substr($i, 5)
			else if ($i ~ /^data: /) data = substr($i, 7)
			else if ($i ~ /^retry: /) { if (ev == "") ev = "retry" }
			else if ($i ~ /^: /) { if (ev == "") ev = "comment" }
		}
		print ev "\t" id "\t" data
	}' "$1"
}
# sse_kinds FILE: the event names in order, space separated (no comments).
sse_kinds() { sse_parse "$1" | cut -f1 | grep -v '^comment$' | uniq | paste -sd' ' -; }
# sse_data FILE EVENT: the data of the first such event.
sse_data() { sse_parse "$1" | awk -F'\t' -v e="$2" '$1 == e { print $3; exit }'; }

# A sync_bin for tests of the serving side: the real pmacache-sync importing the CSV named
# in $DIR/next.csv after sleeping $DIR/sleep seconds (it inherits the lock on fd 3).
make_csv_sync() {
	cat > "$DIR/csv-sync" <<SH
#!/bin/sh
sleep \$(cat "$DIR/sleep" 2>/dev/null || echo 0)
exec "$SYNC" "\$@" --csv "\$(cat "$DIR/next.csv")"
SH
	chmod +x "$DIR/csv-sync"
}
