"""The seed's design, as its diagram draws it: a Flask app that reads data_cache.json with
json.load on every request and returns it with jsonify. The peer pmacache is measured against.
Run by bench/run.sh under gunicorn with 2 workers."""
import json
import os

from flask import Flask, jsonify, request

app = Flask(__name__)
CACHE = os.environ["BENCH_CACHE_FILE"]
with open(os.environ["BENCH_KEY_FILE"]) as f:
    API_KEY = [line.strip() for line in f if line.strip() and not line.startswith("#")][0]


@app.get("/fetch-data")
def fetch_data():
    if request.headers.get("X-API-Key") != API_KEY:
        return jsonify(status="error", message="Unauthorized"), 401
    with open(CACHE, encoding="utf-8") as f:
        data = json.load(f)
    return jsonify(data)
