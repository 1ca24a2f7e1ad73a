#!/usr/bin/env bash
# /v1/context on SciFact (glove): ingests the corpus, then asks for context for the 809
# training claims at a few token budgets, one client, and prints latency percentiles,
# tokens used and how assembly stopped.
# Usage: bench/context_bench.sh [queries, default 300]
set -euo pipefail
n=${1:-300}
. "$(dirname "$0")/serve_lib.sh"
start_contextd
# The query cache off: every run below computes its searches (repeats would hit it).
curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove","cache":{"enabled":false}}' > /dev/null
"$bin/contextd" ingest --url "$url" --collection scifact "$root/../shared/data/scifact/corpus.jsonl" > /dev/null
python3 - "$url" "$n" "$root/../shared/data/scifact/queries.train.jsonl" <<'PY'
import json, sys, time, urllib.request, collections, http.client
url, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
queries = [json.loads(l)["text"] for l in open(path)][:n]

def post(body):
    req = urllib.request.Request(url + "/v1/context", json.dumps(body).encode(), method="POST")
    return json.loads(urllib.request.urlopen(req).read())

def report(label, lat, extra):
    lat.sort()
    out = {"run": label, "queries": len(lat), "p50_ms": round(lat[len(lat) // 2], 3),
           "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3)}
    out.update(extra)
    print(json.dumps(out), flush=True)

# The planner picks the strategy (auto), at three budgets.
for budget in (256, 1024, 4096):
    lat, tokens, stops, strategies, fallbacks = [], [], collections.Counter(), collections.Counter(), 0
    for q in queries:
        t0 = time.perf_counter()
        r = post({"collection": "scifact", "query": q, "max_tokens": budget})
        lat.append((time.perf_counter() - t0) * 1000)
        assert r["tokens"] <= budget
        tokens.append(r["tokens"])
        stops[r["retrieval"]["stopped"]] += 1
        strategies[r["route"]["strategy"]] += 1
        fallbacks += r["route"]["fallback"]
    report("auto max_tokens=%d" % budget, lat, {"mean_tokens": round(sum(tokens) / len(tokens), 1),
           "stopped": dict(stops), "strategies": dict(strategies), "fallbacks": fallbacks})

# Each strategy forced, 1024 tokens.
for strategy in ("simple", "moderate", "complex"):
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        r = post({"collection": "scifact", "query": q, "max_tokens": 1024, "strategy": strategy})
        lat.append((time.perf_counter() - t0) * 1000)
    report("strategy=" + strategy + " max_tokens=1024", lat, {})

# Streamed: time to the first wave event and to the end.
host, port = url.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))
first, total = [], []
for q in queries:
    t0 = time.perf_counter()
    conn.request("POST", "/v1/context", json.dumps({"collection": "scifact", "query": q, "max_tokens": 1024,
                                                     "stream": True}))
    resp = conn.getresponse()
    head = resp.read(1)  # the first byte of the first event
    first.append((time.perf_counter() - t0) * 1000)
    body = head + resp.read()
    total.append((time.perf_counter() - t0) * 1000)
    assert b"event: done" in body
report("stream first wave max_tokens=1024", first, {})
report("stream complete max_tokens=1024", total, {})
PY
