# Shell helpers shared by scripts/pmacache, scripts/pma-stack.sh, the tests and the bench.
# Sourced, not run.

# A free TCP port on 127.0.0.1, below the ephemeral range (which clients' source ports use).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# wait_for SECONDS COMMAND...: until the command succeeds, or fail after SECONDS.
wait_for() {
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do "$@" 2>/dev/null && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

# alive PIDFILE: whether the process it names runs.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid PIDFILE: SIGTERM, up to 15 s, then SIGKILL; the pid file goes.
stop_pid() {
	local f=$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -KILL "$pid" 2>/dev/null; then
			echo "pmacache: pid $pid ($f) did not stop within 15 s of SIGTERM: sent SIGKILL" >&2
		fi
	fi
	rm -f "$f"
}

# As root, pmacache runs as its own system user (config `user`/`group`, default pmacache),
# and nginx's workers (www-data) reach its socket and snapshots as members of its group.
# ensure_pmacache_user: create them as the README's install does (once; useradd locks
# /etc/passwd, and a concurrent run may win). Nothing to do when not root.
ensure_pmacache_user() {
	[ "$(id -u)" = 0 ] || return 0
	id -u pmacache >/dev/null 2>&1 ||
		useradd --system --user-group --home-dir /var/lib/pmacache --no-create-home \
			--shell /usr/sbin/nologin pmacache 2>/dev/null || id -u pmacache >/dev/null || return 1
	id -nG www-data | tr ' ' '\n' | grep -qx pmacache || usermod -aG pmacache www-data
}

# secret_file FILE: a key or password file as pmacache wants it: 0640 root:pmacache (as
# root), 0600 otherwise.
secret_file() {
	if [ "$(id -u)" = 0 ]; then chown root:pmacache "$1"; chmod 640 "$1"; else chmod 600 "$1"; fi
}
