#!/bin/bash
# Nobody gets in: every near-miss key gets the same 401, no key in the query string, path
# tricks get 404 and no data, the socket is 0660, and no key reaches argv or environments.
. "$(dirname "$0")/../lib.sh"
inst_up security
"$GEN" -n 20 csv > "$DIR/o.csv"
"$SYNC" -c "$CONF" --csv "$DIR/o.csv" 2>/dev/null
want='{"status":"error","message":"Unauthorized"}'
upper=$(tr 'a-z' 'A-Z' <<<"$KEY"); [ "$upper" = "$KEY" ] && upper=$(tr 'A-Z' 'a-z' <<<"$KEY")
n=0
while IFS= read -r variant; do
	n=$((n + 1))
	body=$(curl -s -H "X-API-Key: $variant" "$URL/fetch-data")
	is "near-miss key $n gets the same 401" "$body" "$want"
done <<EOF2
${KEY:0:${#KEY}-1}
${KEY}x
 ${KEY}0
${upper}
${KEY:1}
EOF2
is "no header: same 401" "$(curl -s "$URL/fetch-data")" "$want"
is "empty header: same 401" "$(curl -s -H 'X-API-Key;' "$URL/fetch-data")" "$want"
for q in "api_key=$KEY" "key=$KEY" "X-API-Key=$KEY"; do
	is "key in the query ($q%%=*) refused" "$(code "$URL/fetch-data?${q}")" 401
done
is "the right key" "$(code -H "X-API-Key: $KEY" "$URL/fetch-data")" 200

# Path tricks: 404 and no data.
for p in /data_cache.json /cache/data_cache.json /_pmacache/current/data_cache.json \
	"/_pmacache/snapshots/" "/..%2fcache%2fdata_cache.json" "/fetch-data%0a" "/fetch-data/x" \
	"//fetch-data/" "/fetch-data.json" "/status/../_pmacache/current/data_cache.json"; do
	c=$(curl -s -o "$DIR/trick" -w '%{http_code}' --path-as-is -H "X-API-Key: $KEY" "$URL$p")
	check "path $p: 404 or 400, not 200 ($c)" test "$c" = 404 -o "$c" = 400
	check "path $p: no data" sh -c "! grep -q order_number '$DIR/trick'"
done
is "FastCGI socket mode" "$(stat -c %a "$DIR/run/fcgi.sock")" 660
# The only TCP port open is nginx's listen: the responders listen on no port at all.
resp=$(pgrep -f "pmacache-fcgi -c $CONF" | paste -sd'|' -)
is "responders listen on no TCP port" "$(ss -Hltnp | grep -Ec "pid=($resp),")" 0
ngx=$(pgrep -f "nginx -c $DIR/run/nginx.conf" | paste -sd'|' -)
is "nginx listens on its listen only" "$(ss -Hltnp | grep -E "pid=($ngx)," | awk '{print $4}' | sort -u)" "127.0.0.1:$PORT"

# Secrets never reach argv or environments of our processes, nor the logs.
pids=$(pgrep -f "$DIR" | tr '\n' ' ')
hits=0
for p in $pids; do
	grep -qaF "$KEY" /proc/$p/cmdline 2>/dev/null && hits=$((hits + 1))
	grep -qaF "$KEY" /proc/$p/environ 2>/dev/null && hits=$((hits + 1))
done
check "found our processes ($(wc -w <<<"$pids"))" test -n "$pids"
is "the key is in no argv or environment" "$hits" 0
is "the key is in no log" "$(grep -rlF "$KEY" "$DIR/run/log" | wc -l)" 0
finish
