#!/bin/bash
# Queries on /fetch-data (issue 15), checked against the full body of the same snapshot on a
# generated table with hostile values (quotes, CR/LF, TAB, backslash, control bytes, emoji,
# CJK, RTL, the text NULL, the empty string, SQL NULL): pages (offset and after) concatenate
# to data, each filter equals jq's, fields equal a projection, NDJSON and CSV read back (CSV
# with Python's csv module) to the same rows, 304 for every variant, gzip, each bad parameter
# its own 400, changes_since across imports, and the refresh limit counting refreshes only.
. "$(dirname "$0")/../lib.sh"
inst_up query "min_rows_ratio = 0"
J2C=$TOP/tests/tools/json2csv.py
# same NAME GOT WANT: as is, for long texts (a failure shows their starts).
same() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "got '$(head -c 300 <<<"$2")...', want '$(head -c 300 <<<"$3")...'"; fi; }
H="X-API-Key: $KEY"

# The table: gen-orders' rows, and a few more with what URLs and CSV find hardest.
"$GEN" -n 300 csv > "$DIR/a.csv"
{
	printf '"9000000001","#x1","ctl@example.com","Ctl \001\002 \033[31m red","+1","2024-01-01 00:00:00","2024-06-01 12:00:00","1.00","EUR","paid",NULL,"a\\b\\\\c","%%&=+#?","%%20 not a space & not = either",%s,NULL\n' '"[]"'
	printf '"9000000002","#x2","q@example.com","""quoted""","+2","2024-01-01 00:00:00","2024-06-01 12:00:00","2.00","EUR","paid","",",,,","","NULL","[]","2024-07-01 00:00:00"\n'
	printf '"9000000003","#x3","u@example.com","日本語 עברית 🎉","+3","2024-01-01 00:00:00","2024-06-01 12:00:01","3.00","JPY","pending",NULL,"tab\there","null","line\r\nbreak\rbare cr","[]",NULL\n'
} >> "$DIR/a.csv"
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>"$DIR/sync.err" || { notok "import" "$(tail -n 3 "$DIR/sync.err")"; finish; }
api -o "$DIR/full" "$URL/fetch-data"
jq -c .data "$DIR/full" > "$DIR/full.data"
n=$(jq length "$DIR/full.data")
is "the table has 303 rows" "$n" 303
check "the snapshot has its index" test -s "$CACHE/current/rows.idx"

# --- Plain /fetch-data is as before: nginx sends the snapshot file ---------------------------
api -D "$DIR/plain.h" -o "$DIR/plain" "$URL/fetch-data"
check "no parameters: the snapshot as it is" cmp -s "$DIR/plain" "$CACHE/data_cache.json"
check "no parameters: nginx's own ETag (no -q)" grep -qi '^ETag: "[0-9a-f]*-[0-9a-f]*"' "$DIR/plain.h"
api -o "$DIR/buster" "$URL/fetch-data?_=1700000000123"
check "a cache-buster (_=...): the plain body" cmp -s "$DIR/buster" "$CACHE/data_cache.json"

# --- Pages ---------------------------------------------------------------------------------
# pages URL: follow "next" from URL to the end; prints every page's data, one array a line.
pages() {
	local u=$1 i=0
	while [ -n "$u" ] && [ $i -lt 100 ]; do
		api -D "$DIR/page.h" -o "$DIR/page" "$URL$u" || return 1
		jq -c .data "$DIR/page"
		local next link
		next=$(jq -r '.next // empty' "$DIR/page")
		link=$(grep -i '^Link:' "$DIR/page.h" | sed 's/^[^<]*<\([^>]*\)>.*/\1/')
		[ "$next" = "$link" ] || { echo "Link '$link' is not next '$next'" >&2; return 1; }
		u=$next
		i=$((i + 1))
	done
}
pages "/fetch-data?limit=37" > "$DIR/pages.off"
same "offset pages: 9 of them" "$(wc -l < "$DIR/pages.off")" 9
same "offset pages: concatenated, they are data" "$(jq -c -s add "$DIR/pages.off")" "$(cat "$DIR/full.data")"
api -o "$DIR/p1" "$URL/fetch-data?limit=37&offset=74"
is "a page: count, total, status" "$(jq -c '[.count,.total,.status]' "$DIR/p1")" '[37,303,"success"]'
is "a page: last_updated as in the full body" "$(jq -r .last_updated "$DIR/p1")" "$(jq -r .last_updated "$DIR/full")"
same "a page: its rows" "$(jq -c .data "$DIR/p1")" "$(jq -c '.[74:111]' "$DIR/full.data")"
first=$(jq -r '.[0].id' "$DIR/full.data")
{ api "$URL/fetch-data?limit=1" | jq -c .data; pages "/fetch-data?limit=50&after=$first"; } > "$DIR/pages.after"
same "after pages: concatenated, they are data" "$(jq -c -s add "$DIR/pages.after")" "$(cat "$DIR/full.data")"
check "after pages: next carries after=" grep -q 'after=' <(api "$URL/fetch-data?limit=50&after=$first" | jq -r .next)
is "the last page: next null" "$(api "$URL/fetch-data?limit=5&offset=300" | jq -c '[.count,.next]')" '[3,null]'
is "past the end: empty, next null" "$(api "$URL/fetch-data?limit=5&offset=5000" | jq -c '[.count,.total,.data,.next]')" '[0,303,[],null]'
same "offset without limit: the rest" "$(api "$URL/fetch-data?offset=290" | jq -c .data)" "$(jq -c '.[290:]' "$DIR/full.data")"

# --- Filters: each equals jq on the full data ----------------------------------------------
# filt NAME QUERY JQ-SELECT
filt() {
	local got want
	got=$(api "$URL/fetch-data?$2" | jq -c '[.count, .data]')
	want=$(jq -c "[map(select($3)) | length, map(select($3))]" "$DIR/full.data")
	if [ "$got" = "$want" ]; then
		ok "filter $1 ($(jq '.[0]' <<<"$want") rows)"
	else
		notok "filter $1" "got $(head -c 300 <<<"$got"), want $(head -c 300 <<<"$want")"
	fi
}
uri() { jq -rn --arg v "$1" '$v|@uri'; }
filt "financial_status=paid" "financial_status=paid" '.financial_status == "paid"'
filt "two filters (AND)" "currency=EUR&financial_status=refunded" '.currency == "EUR" and .financial_status == "refunded"'
filt "cancelled_at=null is SQL NULL" "cancelled_at=null" '.cancelled_at == null'
filt "note=NULL is the text" "note=NULL" '.note == "NULL"'
filt "fulfillment_status= is the empty string" "fulfillment_status=" '.fulfillment_status == ""'
filt "no match" "currency=XXX" 'false'
for i in 0 1 2 3 5 8 13 300 301 302; do
	for col in note customer_name shipping_address tags; do
		v=$(jq -r --argjson i $i --arg c $col '.[$i][$c] // empty' "$DIR/full.data")
		# The text "null" cannot be asked for: col=null is SQL NULL.
		[ -n "$v" ] && [ "$v" != null ] || continue
		filt "$col of row $i" "$col=$(uri "$v")" ".$col == $(jq -c -n --arg v "$v" '$v')"
	done
done
filt "updated_since (inclusive)" "updated_since=2024-06-01T12:00:00Z" '.updated_at != null and .updated_at >= "2024-06-01 12:00:00"'
mid=$(jq -r '.[150].updated_at' "$DIR/full.data")
filt "updated_since a row's own time" "updated_since=$(uri "${mid/ /T}")" ".updated_at >= \"$mid\""
filt "updated_since with an offset" "updated_since=$(uri "${mid/ /T}+01:00")" ".updated_at >= \"$(date -u -d "$mid UTC - 1 hour" '+%Y-%m-%d %H:%M:%S')\""
sid=$(jq -r '.[250].id' "$DIR/full.data")
filt "since_id (numeric)" "since_id=$sid" "(.id|tonumber) > $sid"
filt "since_id below every id" "since_id=-1" 'true'
filt "a filter and a page" "financial_status=paid&limit=1000" '.financial_status == "paid"'
is "filtered page: total counts every match" "$(api "$URL/fetch-data?currency=EUR&limit=3&offset=2" | jq -c '[.count,.total,(.data|map(.id))]')" \
	"$(jq -c '[map(select(.currency=="EUR"))] | .[0] | [(.[2:5]|length), length, (.[2:5]|map(.id))]' "$DIR/full.data")"
pages "/fetch-data?currency=EUR&limit=7" > "$DIR/pages.f"
same "filtered offset pages concatenate to the filter" "$(jq -c -s add "$DIR/pages.f")" "$(jq -c 'map(select(.currency=="EUR"))' "$DIR/full.data")"
{ api "$URL/fetch-data?currency=EUR&limit=1" | jq -c .data; pages "/fetch-data?currency=EUR&limit=7&after=$(api "$URL/fetch-data?currency=EUR&limit=1" | jq -r '.data[0].id')"; } > "$DIR/pages.fa"
same "filtered after pages concatenate to the filter" "$(jq -c -s add "$DIR/pages.fa")" "$(jq -c 'map(select(.currency=="EUR"))' "$DIR/full.data")"

# --- Fields -----------------------------------------------------------------------------------
is "fields: a projection, in the order asked" "$(api "$URL/fetch-data?fields=note,id,cancelled_at" | jq -c .data)" \
	"$(jq -c 'map({note, id, cancelled_at})' "$DIR/full.data")"
is "fields with a filter and a page" "$(api "$URL/fetch-data?fields=id,tags&tags=&limit=4" | jq -c .data)" \
	"$(jq -c 'map(select(.tags == "") | {id, tags})[:4]' "$DIR/full.data")"

# --- Formats ----------------------------------------------------------------------------------
api -D "$DIR/nd.h" -o "$DIR/nd" "$URL/fetch-data?format=ndjson"
check "ndjson: content type" grep -qi '^Content-Type: application/x-ndjson' "$DIR/nd.h"
is "ndjson: one line a row" "$(wc -l < "$DIR/nd")" "$n"
same "ndjson: the same rows" "$(jq -c -s . "$DIR/nd")" "$(cat "$DIR/full.data")"
same "Accept: application/x-ndjson" "$(api -H 'Accept: application/x-ndjson' "$URL/fetch-data" | jq -c -s .)" "$(cat "$DIR/full.data")"
same "ndjson page with fields" "$(api "$URL/fetch-data?format=ndjson&limit=3&offset=299&fields=id,note" | jq -c -s .)" "$(jq -c '.[299:302] | map({id, note})' "$DIR/full.data")"
api -D "$DIR/csv.h" -o "$DIR/csv" "$URL/fetch-data?format=csv"
check "csv: content type" grep -qi '^Content-Type: text/csv' "$DIR/csv.h"
csv_same() { # CSV file, JSON rows file, [fields]: Python's csv module reads it back to the rows
	python3 - "$1" "$2" <<'PY'
import csv, json, sys
rows = json.load(open(sys.argv[2], encoding="utf-8"))
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    got = list(csv.reader(f))
cols = list(rows[0].keys())
want = [cols] + [["" if r[c] is None else r[c] for c in cols] for r in rows]
if got != want:
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            print("line", i, "got", g, "want", w, file=sys.stderr)
            break
    print(len(got), len(want), file=sys.stderr)
    sys.exit(1)
PY
}
check "csv: Python's csv module reads back every row (header first)" csv_same "$DIR/csv" "$DIR/full.data"
api -o "$DIR/csvf" "$URL/fetch-data?format=csv&fields=tags,id&currency=JPY"
jq -c 'map(select(.currency == "JPY") | {tags, id})' "$DIR/full.data" > "$DIR/csvf.want"
check "csv with fields and a filter reads back" csv_same "$DIR/csvf" "$DIR/csvf.want"
# NULL is an empty unquoted field; a string, the empty one too, is always quoted.
is "csv: SQL NULL is empty and unquoted" "$(api "$URL/fetch-data?format=csv&fields=id,cancelled_at&cancelled_at=null&limit=2" | tail -n 1 | od -An -c | tr -s ' ')" \
	"$(printf '"%s",\r\n' "$(jq -r 'map(select(.cancelled_at == null))[1].id' "$DIR/full.data")" | od -An -c | tr -s ' ')"
is "csv: the empty string is \"\"" "$(api "$URL/fetch-data?format=csv&fields=fulfillment_status&fulfillment_status=&limit=1" | tail -n 1 | tr -d '\r')" '""'
is "csv: the text NULL is \"NULL\"" "$(api "$URL/fetch-data?format=csv&fields=note&note=NULL&limit=1" | tail -n 1 | tr -d '\r')" '"NULL"'

# --- ETag and 304, for every variant; gzip ------------------------------------------------------
variants=("limit=10" "limit=10&offset=10" "fields=id" "currency=EUR" "format=ndjson" "format=csv&limit=3"
	"updated_since=2024-01-01" "since_id=$sid&format=ndjson" "limit=5&after=$first")
etags=""
for v in "${variants[@]}"; do
	e=$(curl -s -D - -o /dev/null -H "$H" "$URL/fetch-data?$v" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
	etags="$etags $e"
	is "304 for ?$v" "$(code -H "$H" -H "If-None-Match: $e" "$URL/fetch-data?$v")" 304
done
is "every variant has its own ETag" "$(tr ' ' '\n' <<<"$etags" | grep -c .)" "$(tr ' ' '\n' <<<"$etags" | grep . | sort -u | wc -l)"
check "query ETags name the snapshot" grep -q "\"$(readlink "$CACHE/current" | sed 's|.*/||')-q" <<<"$etags"
e=$(curl -s -D - -o /dev/null -H "$H" "$URL/fetch-data?limit=10&format=json" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
is "the same query normalised: the same ETag" "$e" "$(awk '{print $1}' <<<"$etags")"
is "Accept ndjson is the format=ndjson variant" "$(curl -s -D - -o /dev/null -H "$H" -H 'Accept: application/x-ndjson' "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')" \
	"$(curl -s -D - -o /dev/null -H "$H" "$URL/fetch-data?format=ndjson" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')"
api -H 'Accept-Encoding: gzip' -D "$DIR/gz.h" -o "$DIR/gz" "$URL/fetch-data?format=ndjson"
check "gzip: Content-Encoding" grep -qi '^Content-Encoding: gzip' "$DIR/gz.h"
check "gzip: the same body" cmp -s <(gunzip -c "$DIR/gz") "$DIR/nd"
ge=$(awk -F': ' 'tolower($1)=="etag"{print $2}' "$DIR/gz.h" | tr -d '\r')
is "gzip: 304 for its ETag" "$(code -H "$H" -H 'Accept-Encoding: gzip' -H "If-None-Match: $ge" "$URL/fetch-data?format=ndjson")" 304
check "Cache-Control as the plain path" grep -qi '^Cache-Control: private, no-cache' "$DIR/nd.h"
is "HEAD of a query: 200, no body" "$(curl -s -I -H "$H" "$URL/fetch-data?limit=3" | head -n 1 | tr -d '\r')" "HTTP/1.1 200 OK"

# --- Bad parameters: 400, each with its own message ----------------------------------------------
bad() {
	local body c
	c=$(curl -s -o "$DIR/bad" -w '%{http_code}' -H "$H" "$URL/fetch-data?$1")
	body=$(jq -r .message "$DIR/bad" 2>/dev/null)
	if [ "$c" = 400 ] && [ "$body" = "$2" ]; then ok "400 for ?$1"; else notok "400 for ?$1" "got $c '$body', want 400 '$2'"; fi
}
bad "limit=0" "query parameter 'limit' must be an integer from 1 to 1000"
bad "limit=1001" "query parameter 'limit' must be an integer from 1 to 1000"
bad "limit=ten" "query parameter 'limit' must be an integer from 1 to 1000"
bad "limit=5&offset=-1" "query parameter 'offset' must be a non-negative integer"
bad "offset=1&after=$first" "query parameters 'offset' and 'after' exclude each other"
bad "limit=2&limit=3" "query parameter 'limit' given twice"
bad "format=xml" "query parameter 'format' must be json, ndjson or csv"
bad "updated_since=yesterday" "query parameter 'updated_since' must be an ISO 8601 time, such as 2024-05-01T12:00:00Z or 2024-05-01"
bad "updated_since=2024-02-30" "query parameter 'updated_since' must be an ISO 8601 time, such as 2024-05-01T12:00:00Z or 2024-05-01"
bad "since_id=abc" "query parameter 'since_id' must be an integer (the ids are)"
bad "colour=red" "unknown query parameter 'colour' (not a column either)"
bad "fields=id,nope" "query parameter 'fields': unknown column 'nope'"
bad "fields=id,,note" "query parameter 'fields' has an empty column name"
bad "after=424242" "query parameter 'after': no row has id '424242'"
bad "note=%zz" "bad percent-encoding in query parameter 'note'"
bad "changes_since=%22nope%22" "query parameter 'changes_since' must be an ETag of /fetch-data"
bad "changes_since=x&limit=1" "query parameter 'changes_since' takes no other parameter"
bad "refresh=maybe&limit=1" "query parameter 'refresh' must be true or false"

# --- changes_since across imports -----------------------------------------------------------------
etag_of() { curl -s -D - -o /dev/null -H "$H" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r'; }
ea=$(etag_of)
# B: rows 0-2 deleted, 3-5 changed, two added.
jq '.data |= (.[3:] | (.[0:3] |= map(.note = "changed " + .id)) + [(.[0] | .id = "9100000001"), (.[1] | .id = "9100000002")])' "$DIR/full" | python3 "$J2C" > "$DIR/b.csv"
sleep 1 # a new snapshot needs a new second (the sync waits for one anyway)
"$SYNC" -c "$CONF" --csv "$DIR/b.csv" 2>"$DIR/sync.err" || notok "import B" "$(tail -n 2 "$DIR/sync.err")"
eb=$(etag_of)
api -o "$DIR/bfull" "$URL/fetch-data"
# want FROM TO: the changes expected between two bodies, by id.
want() {
	jq -n -c --slurpfile f "$1" --slurpfile t "$2" '
		($f[0].data | map({(.id): .}) | add) as $F | ($t[0].data | map({(.id): .}) | add) as $T |
		[($t[0].data | map(select($F[.id] == null)) | map(.id) | sort),
		 ($t[0].data | map(select($F[.id] != null and $F[.id] != .)) | map(.id) | sort),
		 ($f[0].data | map(select($T[.id] == null)) | map(.id) | sort)]'
}
got() { jq -c '[(.added | map(.id) | sort), (.changed | map(.id) | sort), (.deleted | sort)]' "$1"; }
# changes NAME FROM-ETAG TO-ETAG FROM-BODY TO-BODY: changes_since FROM while TO is current.
changes() {
	local code
	code=$(curl -s -o "$DIR/ch" -w '%{http_code}' -H "$H" -G --data-urlencode "changes_since=$2" "$URL/fetch-data")
	is "changes_since $1: 200" "$code" 200
	is "changes_since $1: from and to" "$(jq -c '[.status,.from,.to]' "$DIR/ch")" "$(jq -c -n --arg f "$2" --arg t "$3" '["success",$f,$t]')"
	is "changes_since $1: added, changed, deleted ids" "$(got "$DIR/ch")" "$(want "$DIR/$4" "$DIR/$5")"
	same "changes_since $1: rows as in the new data" "$(jq -c '(.added + .changed) | sort_by(.id)' "$DIR/ch")" \
		"$(jq -c --slurpfile f "$DIR/$4" '($f[0].data | map({(.id): .}) | add) as $F | .data | map(select($F[.id] != .)) | sort_by(.id)' "$DIR/$5")"
}
changes "A to B (3 deleted, 3 changed, 2 added)" "$ea" "$eb" full bfull
# C: row 0 of A re-added (deleted in B), one of B's additions deleted, one row changed.
jq --slurpfile a "$DIR/full" '.data |= ([$a[0].data[0]] + map(select(.id != "9100000001")) | .[5].tags = "changed in C")' "$DIR/bfull" | python3 "$J2C" > "$DIR/c.csv"
"$SYNC" -c "$CONF" --csv "$DIR/c.csv" 2>"$DIR/sync.err" || notok "import C" "$(tail -n 2 "$DIR/sync.err")"
ec=$(etag_of)
api -o "$DIR/cfull" "$URL/fetch-data"
changes "B to C (a deleted id re-added)" "$eb" "$ec" bfull cfull
changes "A to C (over two imports)" "$ea" "$ec" full cfull
check "A to C: the re-added id is neither added nor deleted" test "$(jq --arg i "$first" '[.added[].id, .deleted[]] | index($i)' "$DIR/ch")" = null
is "changes_since the current snapshot: nothing" "$(api -G --data-urlencode "changes_since=$ec" "$URL/fetch-data" | jq -c '[.added,.changed,.deleted]')" '[[],[],[]]'
ce=$(curl -s -D - -o /dev/null -H "$H" -G --data-urlencode "changes_since=$ea" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
is "changes_since: 304" "$(code -H "$H" -H "If-None-Match: $ce" -G --data-urlencode "changes_since=$ea" "$URL/fetch-data")" 304
# D: a fourth snapshot; with keep_snapshots 3, A is gone.
"$SYNC" -c "$CONF" --csv "$DIR/a.csv" 2>"$DIR/sync.err" || notok "import D" "$(tail -n 2 "$DIR/sync.err")"
c=$(curl -s -o "$DIR/gone" -w '%{http_code}' -H "$H" -G --data-urlencode "changes_since=$ea" "$URL/fetch-data")
is "changes_since a snapshot no longer kept: 410" "$c" 410
check "410 says to fetch everything" grep -q 'fetch everything again' "$DIR/gone"
is "changes_since B (kept): 200" "$(code -H "$H" -G --data-urlencode "changes_since=$eb" "$URL/fetch-data")" 200
is "keep_snapshots 3: A's folder is gone, three are left" "$(ls "$CACHE/snapshots" | wc -l) $(test -e "$CACHE/snapshots/${ea//\"/}" && echo kept || echo gone)" "3 gone"

# --- Tables without a usable id or updated column; a snapshot without its index --------------
inst_down
inst_up query-shapes "min_rows_ratio = 0"
H="X-API-Key: $KEY"
printf '"sku","qty"\n"a","1"\n"b","2"\n"a","3"\n' > "$DIR/noid.csv"
"$SYNC" -c "$CONF" --csv "$DIR/noid.csv" 2>/dev/null || notok "import a table without id"
bad "since_id=1" "query parameter 'since_id': the table has no id_column"
bad "after=a" "query parameter 'after': the table has no id_column"
bad "updated_since=2024-01-01" "query parameter 'updated_since': the table has no updated_column"
is "no id: offset pages still work" "$(api "$URL/fetch-data?limit=2&offset=1&fields=qty" | jq -c '[.data,.next]')" '[[{"qty":"2"},{"qty":"3"}],null]'
is "no id: a filter still works" "$(api "$URL/fetch-data?sku=a&format=csv" | tr -d '\r' | paste -sd' ' -)" '"sku","qty" "a","1" "a","3"'
printf '"id","v"\n"1","x"\n"2","y"\n"1","z"\n' > "$DIR/dup.csv"
"$SYNC" -c "$CONF" --csv "$DIR/dup.csv" 2>/dev/null || notok "import a table with a repeated id"
bad "limit=1&after=1" "query parameter 'after' needs unique ids (id_column): use offset"
is "repeated ids: since_id still works" "$(api "$URL/fetch-data?since_id=1&fields=v" | jq -c .data)" '[{"v":"y"}]'
e=$(curl -s -D - -o /dev/null -H "$H" "$URL/fetch-data" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')
"$SYNC" -c "$CONF" --csv "$DIR/noid.csv" 2>/dev/null
is "no unique ids: no changes, 410" "$(code -H "$H" -G --data-urlencode "changes_since=$e" "$URL/fetch-data")" 410
rm -f "$CACHE/current/rows.idx"
"$PMACACHE" -c "$CONF" restart >/dev/null
c=$(curl -s -o "$DIR/ni" -w '%{http_code}' -H "$H" "$URL/fetch-data?limit=1")
is "a snapshot without its index: 503" "$c $(jq -r .message "$DIR/ni")" "503 This snapshot has no query index: the next sync builds it"
check "... while the plain body is served" cmp -s <(api "$URL/fetch-data") "$CACHE/data_cache.json"
# --no-index (what make bench compares against): published without rows.idx and keys.idx.
"$SYNC" -c "$CONF" --csv "$DIR/dup.csv" --no-index 2>/dev/null || notok "import with --no-index"
check "--no-index: no index beside the body" test ! -e "$CACHE/current/rows.idx" -a ! -e "$CACHE/current/keys.idx" -a -s "$CACHE/current/data_cache.json"
is "--no-index: queries 503" "$(code -H "$H" "$URL/fetch-data?limit=1")" 503
is "--no-index: the full body is served" "$(api "$URL/fetch-data" | jq -c '[.count, (.data | map(.v))]')" '[3,["x","y","z"]]'
"$SYNC" -c "$CONF" --csv "$DIR/dup.csv" 2>/dev/null || notok "import after --no-index"
is "the next sync builds the index again" "$(api "$URL/fetch-data?limit=1&offset=2&fields=v" | jq -c .data)" '[{"v":"z"}]'

# --- The refresh limit counts refresh=true in any encoding, and nothing else ---------------------
inst_down
inst_up query-limits "limit_refresh_per_min = 2
limit_refresh_burst = 3
min_rows_ratio = 0"
H="X-API-Key: $KEY"
make_csv_sync
echo "$DIR/../query/a.csv" > "$DIR/next.csv"
sed -i "s|^sync_bin = .*|sync_bin = $DIR/csv-sync|" "$CONF"
"$PMACACHE" -c "$CONF" restart >/dev/null
"$SYNC" -c "$CONF" --csv "$DIR/../query/a.csv" 2>/dev/null || notok "import for the limits"
# --- SSE: fields and filters shape the cached and updated events ------------------------------
curl -sN --max-time 30 -H "$H" "$URL/fetch-data?stream=true&fields=id,currency&currency=EUR" -o "$DIR/sse1"
is "stream with a filter: cached, then done" "$(sse_kinds "$DIR/sse1")" "retry cached done"
api -o "$DIR/full" "$URL/fetch-data"
same "stream: cached carries only the matching rows and the fields" "$(sse_data "$DIR/sse1" cached | jq -c .payload.data)" \
	"$(jq -c '.data | map(select(.currency == "EUR") | {id, currency})' "$DIR/full")"
is "stream: its count" "$(sse_data "$DIR/sse1" cached | jq .payload.count)" "$(jq '.data | map(select(.currency == "EUR")) | length' "$DIR/full")"
echo "$DIR/../query/b.csv" > "$DIR/next.csv"
curl -sN --max-time 60 -H "$H" "$URL/fetch-data?stream=true&refresh=true&fields=note,id&note=changed%205000000003" -o "$DIR/sse2"
check "stream with refresh: cached, progress, updated, done" grep -Eq '^retry cached (progress )+updated done$' <<<"$(sse_kinds "$DIR/sse2")"
same "stream: updated carries the new snapshot's matching rows" "$(sse_data "$DIR/sse2" updated | jq -c .payload.data)" \
	"$(api "$URL/fetch-data" | jq -c '.data | map(select(.note == "changed 5000000003") | {note, id})')"
is "stream: cached had none of them, updated has the one" "$(sse_data "$DIR/sse2" cached | jq -c .payload.count) $(sse_data "$DIR/sse2" updated | jq -c .payload.count)" "0 1"
wait_idle
c=$(curl -s -o "$DIR/sb" -w '%{http_code}' -H "$H" "$URL/fetch-data?stream=true&limit=5")
is "stream with limit: 400" "$c $(jq -r .message "$DIR/sb")" "400 stream=true takes fields and filters only (no limit, offset, after, format or changes_since)"
c=$(curl -s -o "$DIR/sb" -w '%{http_code}' -H "$H" "$URL/fetch-data?stream=true&colour=red")
is "stream with an unknown parameter: 400" "$c $(jq -r .message "$DIR/sb")" "400 unknown query parameter 'colour' (not a column either)"

codes() { for i in $(seq "$1"); do code -H "$H" "$URL/fetch-data?$2"; echo; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ' -; }
is "12 queries with %20, quotes and an encoded &refresh=true in a value: none limited" \
	"$(codes 12 "note=$(uri '50% "off" &refresh=true')&limit=1")" "200x12"
is "12 queries with refresh=false: none limited" "$(codes 12 "refresh=false&limit=1")" "200x12"
is "12 queries with a parameter named Refresh: 400, not limited" "$(codes 12 "Refresh=true&limit=1")" "400x12"
is "12 with refreshment=true: 400, not limited" "$(codes 12 "refreshment=true")" "400x12"
wait_idle
r=$(codes 8 "%72efresh=%74rue&limit=1")
check "8 refreshes spelled %72efresh=%74rue: the burst passes, then 429 ($r)" grep -Eq '^200x[1-4] 429x[4-7]$' <<<"$r"
for q in "refresh=true" "r%65fresh=1" "refresh=%31&limit=1" "limit=1&refres%68=tru%65"; do
	is "then ?$q: 429" "$(code -H "$H" "$URL/fetch-data?$q")" 429
done
is "and a filter with %20 still: 200" "$(code -H "$H" "$URL/fetch-data?note=a%20b&limit=1")" 200
is "and plain /fetch-data still: 200" "$(code -H "$H" "$URL/fetch-data")" 200
wait_idle
finish
