#!/bin/bash
# The nginx drop-in inside someone else's server { } (a LAMP host's), the sample config, and
# the cron line.
. "$(dirname "$0")/../lib.sh"
inst_up dropin
"$GEN" -n 50 csv > "$DIR/o.csv"
"$SYNC" -c "$CONF" --csv "$DIR/o.csv" 2>/dev/null

# An existing site with its own locations; pmacache joins it through the two includes.
site=$DIR/site
mkdir -p "$site/www" "$site/tmp"
echo "shop front page" > "$site/www/index.html"
echo "404 from the site" > "$site/www/404.html"
"$PMACACHE" -c "$CONF" nginx-http > "$site/pmacache-http.conf"
"$PMACACHE" -c "$CONF" nginx-snippet > "$site/pmacache.conf"
sport=$(free_port)
site_nginx "$site" "include $site/pmacache-http.conf;" "listen 127.0.0.1:$sport;
		location / { try_files \$uri \$uri/ =404; }
		error_page 404 /404.html;
		error_page 401 /404.html;
		include $site/pmacache.conf;"
check "nginx -t accepts the drop-in" nginx -t -c "$site/nginx.conf" -p "$site"
nginx -c "$site/nginx.conf" -p "$site"
trap 'nginx -c "$site/nginx.conf" -p "$site" -s stop 2>/dev/null; inst_down' EXIT
S=http://127.0.0.1:$sport
check "the site's nginx answers" wait_for 10 curl -sf -o /dev/null "$S/"
is "the site still serves its pages" "$(curl -s "$S/")" "shop front page"
is "health through the drop-in" "$(curl -s "$S/health" | jq -r .status)" healthy
is "fetch-data through the drop-in" "$(curl -s -H "X-API-Key: $KEY" "$S/fetch-data" | jq .count)" 50
is "401 through the drop-in" "$(code "$S/fetch-data")" 401
is "the 401 body through the drop-in" "$(curl -s -H 'X-API-Key: wrong-key-0123456789' "$S/status")" '{"status":"error","message":"Unauthorized"}'
is "the site keeps its own error pages (while pmacache keeps its JSON 401)" "$(curl -s "$S/nothing-here-$RANDOM")" "$(printf '404 from the site')"
is "the snapshot location is internal" "$(code "$S/_pmacache/current/data_cache.json")" 404
is "304 through the drop-in" "$(code -H "X-API-Key: $KEY" -H "If-None-Match: $(curl -sI -H "X-API-Key: $KEY" "$S/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')" "$S/fetch-data")" 304
# No cors_origins (the default): no CORS headers, and no preflight answer.
is "no cors_origins: no CORS headers" "$(curl -s -D - -o /dev/null -H 'Origin: http://127.0.0.1:1' -H "X-API-Key: $KEY" "$S/fetch-data" | grep -ci '^Access-Control-')" 0
is "no cors_origins: OPTIONS is not a preflight" "$(code -X OPTIONS -H 'Origin: http://127.0.0.1:1' -H 'Access-Control-Request-Method: GET' "$S/fetch-data")" 405
is "FastCGI socket mode 0660" "$(stat -c %a "$DIR/run/fcgi.sock")" 660

# Without the http part, nginx -t fails at the snippet's check line, and the comment above
# that line says what to include.
sed "s|^\s*include $site/pmacache-http.conf;||" "$site/nginx.conf" > "$site/nohttp.conf"
nginx -t -c "$site/nohttp.conf" -p "$site" 2>"$site/nohttp.err"
is "snippet without the http part: nginx -t fails" "$?" 1
err=$(grep emerg "$site/nohttp.err")
check "nginx -t names the check ($err)" grep -q 'unknown log format "pmacache_noquery" in .*pmacache.conf:[0-9]' <<<"$err"
line=$(grep -o 'pmacache.conf:[0-9]*' <<<"$err" | cut -d: -f2)
check "the comment above line ${line:-?} says what to include" grep -q 'include /etc/nginx/conf.d/pmacache.conf;   # inside http' <(head -n "${line:-0}" "$site/pmacache.conf" | tail -n 6)

# location_prefix: the endpoints under /api/orders/, beside the site's own /status.
sed 's|^location_prefix = .*||' "$CONF" > "$DIR/prefix.conf"
echo "location_prefix = /api/orders/" >> "$DIR/prefix.conf"
"$PMACACHE" -c "$DIR/prefix.conf" nginx-snippet > "$site/pmacache.conf"
echo "the site's own status page" > "$site/www/status"
# A reload starts new workers; the old ones may still take a connection until they have
# seen the signal: wait until every old worker is gone.
old_workers=$(pgrep -P "$(cat "$site/nginx.pid")" | paste -sd' ' -)
nginx -c "$site/nginx.conf" -p "$site" -s reload 2>/dev/null
check "the old workers are gone after the reload" wait_for 15 sh -c "! kill -0 $old_workers 2>/dev/null"
check "prefix: the site's /status is the site's again" wait_for 10 sh -c "[ \"\$(curl -s '$S/status')\" = \"the site's own status page\" ]"
is "prefix: /api/orders/health" "$(curl -s "$S/api/orders/health" | jq -r .status)" healthy
is "prefix: /api/orders/fetch-data" "$(curl -s -H "X-API-Key: $KEY" "$S/api/orders/fetch-data" | jq .count)" 50
is "prefix: /api/orders/status" "$(curl -s -H "X-API-Key: $KEY" "$S/api/orders/status" | jq .count)" 50
is "prefix: 401 keeps its JSON" "$(curl -s "$S/api/orders/fetch-data")" '{"status":"error","message":"Unauthorized"}'
is "prefix: POST /api/orders/refresh" "$(code -X POST -H "X-API-Key: $KEY" "$S/api/orders/refresh")" 202
wait_idle
is "prefix: /fetch-data at the root is the site's 404" "$(curl -s -H "X-API-Key: $KEY" "$S/fetch-data")" "404 from the site"
is "prefix: a trailing %0a is not the endpoint" "$(code -H "X-API-Key: $KEY" "$S/api/orders/fetch-data%0a")" 404
is "prefix: gzip through it" "$(curl -s --compressed -H "X-API-Key: $KEY" "$S/api/orders/fetch-data" | jq .count)" 50

# start-responders: only the responders; the site's nginx serves them.
"$PMACACHE" -c "$CONF" stop >/dev/null
out=$("$PMACACHE" -c "$CONF" start-responders)
check "start-responders says where ($out)" grep -q "responders on $DIR/run/fcgi.sock" <<<"$out"
is "start-responders: no private nginx" "$(test -e "$DIR/run/nginx.pid" && echo yes || echo no)" no
is "start-responders: served through the site" "$(curl -s -H "X-API-Key: $KEY" "$S/api/orders/fetch-data" | jq .count)" 50
check "start-responders: status shows them" "$PMACACHE" -c "$CONF" status
out=$("$PMACACHE" -c "$CONF" probe 2>&1)
check "probe: /health straight from the socket ($out)" grep -q "/health answers on $DIR/run/fcgi.sock" <<<"$out"
"$PMACACHE" -c "$CONF" stop >/dev/null
out=$("$PMACACHE" -c "$CONF" probe 2>&1)
is "probe, responders stopped: fails" "$?" 1
check "probe, responders stopped: says so ($out)" grep -q "do not answer /health on $DIR/run/fcgi.sock" <<<"$out"
"$PMACACHE" -c "$CONF" start >/dev/null

# The sample config parses, and documents every key the parser knows.
check "pmacache.conf.sample is valid" "$TOP/cgi/pmacache-fcgi" -c "$TOP/pmacache.conf.sample" --check
keys=$("$TOP/build/conf-keys")
nkeys=$(wc -l <<<"$keys")
check "the parser knows its keys ($nkeys)" test "$nkeys" -ge 20
undoc=""
for k in $keys; do
	grep -q "^#\?$k = " "$TOP/pmacache.conf.sample" || undoc="$undoc sample:$k"
	grep -q "\`$k\`" "$TOP/README.md" || undoc="$undoc README:$k"
done
is "every key is in the sample and the README" "${undoc# }" ""

# The cron line.
mkdir -p "$DIR/cron.d"
PMACACHE_CRON_DIR=$DIR/cron.d "$PMACACHE" -c "$CONF" install-cron >/dev/null
line=$(grep -v '^#' "$DIR/cron.d/pmacache" | grep 'pmacache-sync')
check "cron: hourly" grep -Eq '^[0-9]+ \* \* \* \* ' <<<"$line"
check "cron: runs pmacache-sync with the config" grep -q "pmacache-sync -c $CONF" <<<"$line"
want=$(id -un); [ "$(id -u)" = 0 ] && want=$PMC_USER
is "cron: runs as $want" "$(awk '{ print $6 }' <<<"$line")" "$want"
check "cron: the command works as written" bash -c "$(cut -d' ' -f7- <<<"$line" | sed 's/>>.*//') --check-keys"
finish
