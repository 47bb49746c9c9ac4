#!/bin/bash
# pma-stack.sh up|down|status DIR [ROWS]
#
# A demo phpMyAdmin stack in its own runtime folder DIR, on loopback only, without touching
# system services: MariaDB (own datadir, socket, port), php-fpm (own pool), nginx serving
# Debian's phpMyAdmin (cookie auth), a database `shop` with a table `orders` seeded with ROWS
# synthetic rows (default 102052), and a SELECT-only user with a generated password.
# Writes DIR/stack.env (ports, URL, user, paths; no password) and DIR/pma_password (0600).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-}
rows=${3:-102052}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pma-stack.sh up|down|status DIR [ROWS]" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
gen=$here/build/gen-orders
phpfpm=$(command -v php-fpm8.2 || ls /usr/sbin/php-fpm* 2>/dev/null | head -n1)
hook=/etc/phpmyadmin/conf.d/pmacache-stack.php

. "$here/scripts/proc.sh"
die() { echo "pma-stack: $*" >&2; exit 1; }
sql() { mariadb --no-defaults -S "$dir/mysql/mysqld.sock" -u root "$@"; }

down() {
	stop_pid "$dir/nginx.pid"
	stop_pid "$dir/php-fpm.pid"
	stop_pid "$dir/mysql/mysqld.pid"
}

up() {
	[ "$(id -u)" = 0 ] || die "run as root (MariaDB and php-fpm drop to the mysql and www-data users)"
	[ -x "$gen" ] || die "$gen missing: run make build/gen-orders"
	down
	local db_port pma_port pw secret
	db_port=$(free_port)
	pma_port=$(free_port)
	mkdir -p "$dir/mysql" "$dir/log" "$dir/nginx" "$dir/php-sessions" "$dir/pma-tmp"
	chown mysql:mysql "$dir/mysql"
	chown www-data:www-data "$dir/php-sessions" "$dir/pma-tmp" "$dir/nginx"

	# MariaDB with its own datadir, socket and port.
	if [ ! -d "$dir/mysql/data/mysql" ]; then
		mariadb-install-db --no-defaults --datadir="$dir/mysql/data" --user=mysql \
			--auth-root-authentication-method=socket --skip-test-db >"$dir/log/install-db.log" 2>&1 ||
			die "mariadb-install-db failed: see $dir/log/install-db.log"
	fi
	mariadbd --no-defaults --datadir="$dir/mysql/data" --socket="$dir/mysql/mysqld.sock" \
		--port="$db_port" --bind-address=127.0.0.1 --pid-file="$dir/mysql/mysqld.pid" \
		--log-error="$dir/log/mariadb.log" --user=mysql --skip-name-resolve \
		--innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_bin </dev/null >/dev/null 2>&1 &
	wait_for 60 test -S "$dir/mysql/mysqld.sock" || die "MariaDB did not start: see $dir/log/mariadb.log"
	wait_for 30 sql -e 'SELECT 1' >/dev/null || die "MariaDB does not answer: see $dir/log/mariadb.log"

	# The shop database, seeded, and a SELECT-only user with a fresh password.
	pw=$(head -c 24 /dev/urandom | base64 | tr -d '=+/')
	(umask 077; printf '%s' "$pw" > "$dir/pma_password")
	# pmacache-sync runs as the pmacache user (started as root, it becomes that user): the
	# file is root's, readable by the group, as the README's install makes it.
	if [ "$(id -u)" = 0 ] && getent group pmacache >/dev/null; then
		chown root:pmacache "$dir/pma_password"
		chmod 640 "$dir/pma_password"
	fi
	sql -e "CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	"$gen" -n "$rows" sql | sql shop
	sql <<SQL
CREATE USER IF NOT EXISTS 'pmacache_ro'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'pmacache_ro'@'localhost';
ALTER USER 'pmacache_ro'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'pmacache_ro'@'localhost' IDENTIFIED BY '$pw';
GRANT SELECT ON shop.* TO 'pmacache_ro'@'127.0.0.1';
GRANT SELECT ON shop.* TO 'pmacache_ro'@'localhost';
FLUSH PRIVILEGES;
SQL

	# phpMyAdmin's config for this stack, reached through one hook file in conf.d.
	if [ ! -f "$hook" ]; then
		cat > "$hook" <<'PHP'
<?php
// pmacache demo/test stacks: php-fpm pools point PMACACHE_PMA_CONFIG at their own config.
$pmacache_stack = getenv('PMACACHE_PMA_CONFIG');
if ($pmacache_stack && is_readable($pmacache_stack)) {
    require $pmacache_stack;
}
PHP
	fi
	secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	cat > "$dir/pma-config.php" <<PHP
<?php
\$cfg['blowfish_secret'] = '$secret';
\$cfg['VersionCheck'] = false;
\$cfg['SendErrorReports'] = 'never';
\$cfg['TempDir'] = '$dir/pma-tmp';
\$cfg['Servers'][1]['auth_type'] = 'cookie';
\$cfg['Servers'][1]['host'] = '127.0.0.1';
\$cfg['Servers'][1]['port'] = '$db_port';
\$cfg['Servers'][1]['connect_type'] = 'tcp';
\$cfg['Servers'][1]['AllowNoPassword'] = false;
\$cfg['Servers'][1]['AllowRoot'] = false;
PHP
	chown root:www-data "$dir/pma-config.php"
	chmod 640 "$dir/pma-config.php"

	cat > "$dir/php-fpm.conf" <<CONF
[global]
pid = $dir/php-fpm.pid
error_log = $dir/log/php-fpm.log
daemonize = yes

[pma]
user = www-data
group = www-data
listen = $dir/php-fpm.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = static
pm.max_children = 4
clear_env = yes
env[PMACACHE_PMA_CONFIG] = $dir/pma-config.php
php_admin_value[session.save_path] = $dir/php-sessions
php_admin_value[upload_tmp_dir] = $dir/pma-tmp
php_admin_value[memory_limit] = 512M
php_admin_value[max_execution_time] = 300
php_admin_flag[log_errors] = on
CONF
	"$phpfpm" -y "$dir/php-fpm.conf" -c /etc/php/8.2/fpm/php.ini || die "php-fpm did not start: see $dir/log/php-fpm.log"
	wait_for 20 test -S "$dir/php-fpm.sock" || die "php-fpm did not start: see $dir/log/php-fpm.log"

	cat > "$dir/nginx.conf" <<CONF
user www-data www-data;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/log/nginx-error.log warn;
events { worker_connections 256; }
http {
	include /etc/nginx/mime.types;
	access_log $dir/log/nginx-access.log;
	client_body_temp_path $dir/nginx/client_body;
	fastcgi_temp_path $dir/nginx/fastcgi;
	proxy_temp_path $dir/nginx/proxy;
	uwsgi_temp_path $dir/nginx/uwsgi;
	scgi_temp_path $dir/nginx/scgi;
	server {
		listen 127.0.0.1:$pma_port;
		root /usr/share/phpmyadmin;
		index index.php;
		client_max_body_size 64m;
		location ~ ^/(libraries|setup/lib|templates|vendor|sql)/ { deny all; }
		location ~ \.php$ {
			try_files \$uri =404;
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
			fastcgi_pass unix:$dir/php-fpm.sock;
			fastcgi_read_timeout 300s;
			fastcgi_buffering on;
		}
	}
}
CONF
	nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/log/nginx-error.log" || die "nginx did not start: see $dir/log/nginx-error.log"
	wait_for 10 alive "$dir/nginx.pid" || die "nginx did not start"
	wait_for 20 curl -sf -o /dev/null "http://127.0.0.1:$pma_port/" || die "phpMyAdmin does not answer: see $dir/log"

	cat > "$dir/stack.env" <<ENV
PMA_URL=http://127.0.0.1:$pma_port/
PMA_PORT=$pma_port
PMA_USER=pmacache_ro
PMA_PASSWORD_FILE=$dir/pma_password
PMA_DB=shop
PMA_TABLE=orders
DB_PORT=$db_port
DB_SOCKET=$dir/mysql/mysqld.sock
ROWS=$rows
ENV
	# The same as pmacache.conf lines, for whoever points a pmacache at this stack.
	(
		. "$dir/stack.env"
		printf 'pma_url = %s\npma_user = %s\npma_password_file = %s\npma_db = %s\npma_table = %s\n' \
			"$PMA_URL" "$PMA_USER" "$PMA_PASSWORD_FILE" "$PMA_DB" "$PMA_TABLE"
	) > "$dir/pmacache-pma.conf"
	echo "pma-stack: phpMyAdmin on http://127.0.0.1:$pma_port/ (MariaDB port $db_port, $rows rows in shop.orders)"
}

status() {
	local rc=0 n
	for n in mysql/mysqld php-fpm nginx; do
		if alive "$dir/$n.pid"; then echo "$n: running"; else echo "$n: stopped"; rc=3; fi
	done
	return $rc
}

case $cmd in
up) up ;;
down) down ;;
status) status ;;
*) echo "usage: pma-stack.sh up|down|status DIR [ROWS]" >&2; exit 2 ;;
esac
