#!/usr/bin/env python3
"""json2csv: a /fetch-data body (stdin) to a CSV in phpMyAdmin's export dialect (stdout), for
tests that import edited tables: every non-empty value quoted with '"' doubled, the empty
string bare, SQL NULL a bare NULL, CRLF line ends; the columns from the first row's keys or,
with no rows, from argv[1] (a JSON array)."""
import json
import sys

body = json.load(sys.stdin)
rows = body["data"]
cols = list(rows[0].keys()) if rows else json.loads(sys.argv[1])
out = sys.stdout.buffer


def field(v):
    if v is None:
        return b"NULL"
    if v == "":
        return b""
    return b'"' + v.encode("utf-8", "surrogatepass").replace(b'"', b'""') + b'"'


out.write(b",".join(field(c) for c in cols) + b"\r\n")
for r in rows:
    out.write(b",".join(field(r[c]) for c in cols) + b"\r\n")
