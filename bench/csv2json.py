"""A one-pass CSV -> JSON converter with Python's csv and json modules: the peer for
pmacache-sync --csv. NULL (unquoted) becomes null, as in pmacache."""
import csv
import json
import sys

with open(sys.argv[1], newline="", encoding="utf-8") as src, open(sys.argv[2], "w") as out:
    rows = csv.reader(src)
    header = next(rows)
    out.write('{"status":"success","data":[')
    first = True
    for row in rows:
        obj = {k: (None if v == "NULL" else v) for k, v in zip(header, row)}
        if not first:
            out.write(",")
        out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        first = False
    out.write("]}")
