#!/usr/bin/env bash
# Deadlines (issue 18): SciFact ingested with GloVe; each of 809 training queries sent once
# with no deadline and once with X-Request-Timeout-Ms: 1 (hybrid /query, and /v1/context
# with "strategy":"complex", the slowest plan), one client, keep-alive, cache bypassed.
# Prints latency percentiles seen by the client and the status mix.
# Usage: bench/deadline.sh
set -euo pipefail
. "$(dirname "$0")/serve_lib.sh"
shared="$root/../shared/data/scifact"
start_contextd
ingest_scifact
python3 - "$url" "$shared/queries.train.jsonl" <<'PY'
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
queries = [json.loads(l)["text"] for l in open(sys.argv[2])]
conn = http.client.HTTPConnection(u.hostname, u.port)
def run(path, body_of, headers):
    lat, codes = [], {}
    for q in queries:
        t = time.perf_counter()
        conn.request("POST", path, json.dumps(body_of(q)), headers)
        r = conn.getresponse(); r.read()
        lat.append((time.perf_counter() - t) * 1e3)
        codes[r.status] = codes.get(r.status, 0) + 1
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    return {"p50_ms": round(pct(0.5), 2), "p99_ms": round(pct(0.99), 2), "max_ms": round(lat[-1], 2), "status": codes}
cases = [
    ("hybrid /query", "/v1/collections/scifact/query", lambda q: {"query": q, "mode": "hybrid", "k": 10, "cache": "bypass"}),
    ("complex /v1/context", "/v1/context", lambda q: {"collection": "scifact", "query": q, "strategy": "complex", "max_tokens": 2000}),
]
for name, path, body in cases:
    for label, headers in (("no deadline", {}), ("1 ms deadline", {"X-Request-Timeout-Ms": "1"})):
        print(json.dumps({"case": name, "deadline": label, **run(path, body, headers)}))
PY
