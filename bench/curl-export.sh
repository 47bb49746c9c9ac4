#!/bin/bash
# curl-export.sh PMA_URL USER PASSWORD_FILE DB TABLE OUT: the plain-curl peer of a sync. Logs in
# to phpMyAdmin (cookie auth), opens the export page for its token and POSTs the export form in
# the dialect the sync asks for; the CSV goes to OUT. Prints login_s export_s total_s bytes.
# The password is read by curl from its file: never in argv.
set -eu
url=$1 user=$2 pwf=$3 db=$4 tb=$5 out=$6
jar=$(mktemp) page=$(mktemp)
trap 'rm -f "$jar" "$page"' EXIT
t0=$(date +%s.%N)
curl -sf -c "$jar" -b "$jar" -o "$page" "${url}index.php"
token=$(sed -n 's/.*name="token" value="\([^"]*\)".*/\1/p' "$page" | head -n1)
set_session=$(sed -n 's/.*name="set_session" value="\([^"]*\)".*/\1/p' "$page" | head -n1)
# The password's first line, as the sync reads it, through a pipe.
head -n1 "$pwf" | tr -d '\r\n' | curl -sf -c "$jar" -b "$jar" -o /dev/null \
	--data-urlencode "pma_username=$user" --data-urlencode "pma_password@-" -d server=1 -d route=/ -d "token=$token" -d "set_session=$set_session" \
	"${url}index.php?route=/"
curl -sf -c "$jar" -b "$jar" -o "$page" "${url}index.php?route=/table/export&db=$db&table=$tb"
token=$(sed -n 's/.*name="token" value="\([^"]*\)".*/\1/p' "$page" | head -n1)
[ -n "$token" ] || { echo "no token: login failed?" >&2; exit 1; }
t1=$(date +%s.%N)
curl -sf -b "$jar" -o "$out" -d "db=$db" -d "table=$tb" -d export_type=table -d export_method=quick \
	-d "token=$token" -d quick_or_custom=custom -d what=csv -d allrows=1 -d output_format=sendit \
	--data-urlencode filename_template=@TABLE@ -d charset=utf-8 -d compression=none \
	--data-urlencode csv_separator=, --data-urlencode 'csv_enclosed="' --data-urlencode 'csv_escaped="' \
	-d csv_terminated=AUTO -d csv_null=NULL -d csv_columns=something -d csv_structure_or_data=data \
	"${url}index.php?route=/export"
t2=$(date +%s.%N)
printf 'login %.2f export %.2f total %.2f bytes %s\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)" "$(stat -c %s "$out")"
