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
check "cron: the command works as written" bash -c "$(cut -d' ' -f7- <<<"$line" | sed 's/>>.*//') --check"
finish
