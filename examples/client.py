#!/usr/bin/env python3
"""pmacache from Python with requests (Debian: python3-requests).

    PMACACHE_URL=http://127.0.0.1:8080 PMACACHE_KEY=... python3 examples/client.py

Fetches the orders, revalidates them with their ETag (304: nothing to download), then asks
for a sync and follows it as Server-Sent Events until the new data is there.
"""
import json
import os
import sys

import requests

URL = os.environ.get("PMACACHE_URL", "http://127.0.0.1:8080").rstrip("/")
KEY = os.environ.get("PMACACHE_KEY") or sys.exit("set PMACACHE_KEY to an API key")

session = requests.Session()
session.headers["X-API-Key"] = KEY  # a header, never a query parameter


def fetch(etag=None):
    """The whole table as (body, etag); body is None when our copy (etag) is current."""
    headers = {"If-None-Match": etag} if etag else {}
    r = session.get(f"{URL}/fetch-data", headers=headers, timeout=60)
    if r.status_code == 304:
        return None, etag
    r.raise_for_status()
    return r.json(), r.headers.get("ETag")


def sse_events(response):
    """(event, id, data) for each Server-Sent Event of a streamed response."""
    event, event_id, data = "message", None, []
    for line in response.iter_lines():  # bytes: split on line ends only
        line = line.decode("utf-8")
        if not line:  # a blank line ends an event
            if data:
                yield event, event_id, json.loads("\n".join(data))
            event, data = "message", []
        elif not line.startswith(":"):  # ": ping" is a heartbeat
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


body, etag = fetch()
orders = body["data"]
print(f"count: {len(orders)}")

body, etag = fetch(etag)
print("revalidate:", "304 not modified" if body is None else "changed")

# Start a sync and follow it. payload=none keeps the events small (count, etag,
# last_updated); the new rows are then fetched once, compressed.
failed = False
stream = {"stream": "true", "refresh": "true", "payload": "none"}
with session.get(f"{URL}/fetch-data", params=stream, stream=True, timeout=(10, 660)) as r:
    r.raise_for_status()
    for event, event_id, msg in sse_events(r):
        if event == "progress":
            rows, size = msg["rows"], msg["bytes"]
            print(f"progress: {msg['phase']} rows={rows if rows is not None else '-'}"
                  f" bytes={size if size is not None else '-'}")
        elif event == "updated":
            print(f"updated: {msg['payload']['count']} rows, etag {event_id}")
        elif event == "failed":
            print(f"sync failed: {msg['error']} (the cache is unchanged)", file=sys.stderr)
            failed = True
        elif event == "done":
            break

body, etag = fetch(etag)
if body is not None:
    orders = body["data"]
print(f"count: {len(orders)}")
sys.exit(1 if failed else 0)
