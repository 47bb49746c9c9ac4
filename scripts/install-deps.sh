#!/bin/sh
# Install the Debian 12 packages pmacache needs to build, test and run its demo.
# Idempotent; run as root. Never starts or enables system services.
set -eu
export DEBIAN_FRONTEND=noninteractive

# Keep package postinst scripts from starting system services (mariadb, nginx, php-fpm).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi

# phpMyAdmin without Apache and without dbconfig.
echo 'phpmyadmin phpmyadmin/dbconfig-install boolean false' | debconf-set-selections
echo 'phpmyadmin phpmyadmin/reconfigure-webserver multiselect' | debconf-set-selections

PKGS="build-essential pkg-config clang libfcgi-dev libcurl4-openssl-dev libjson-c-dev zlib1g-dev libisal-dev libxxhash-dev jq
 nginx-light spawn-fcgi libfcgi-bin curl procps psmisc iproute2 netcat-openbsd strace valgrind chromium chromium-driver
 mariadb-server mariadb-client php-fpm phpmyadmin wrk python3 python3-requests nodejs mandoc systemd logrotate
 miller time"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
fi
