#!/usr/bin/env bash
# /v1/context on SciFact (glove): ingests the corpus, then asks for context for the 809
# training claims at a few token budgets, one client, and prints latency percentiles,
# tokens used and how assembly stopped.
# Usage: bench/context_bench.sh [queries, default 300]
set -euo pipefail
n=${1:-300}
. "$(dirname "$0")/serve_lib.sh"
start_contextd
curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
"$bin/contextd" ingest --url "$url" --collection scifact "$root/../shared/data/scifact/corpus.jsonl" > /dev/null
python3 - "$url" "$n" "$root/../shared/data/scifact/queries.train.jsonl" <<'PY'
import json, sys, time, urllib.request, collections
url, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
queries = [json.loads(l)["text"] for l in open(path)][:n]
for budget in (256, 1024, 4096):
    lat, tokens, stops = [], [], collections.Counter()
    for q in queries:
        body = json.dumps({"collection": "scifact", "query": q, "max_tokens": budget, "mode": "hybrid"}).encode()
        t0 = time.perf_counter()
        r = json.loads(urllib.request.urlopen(urllib.request.Request(url + "/v1/context", body, method="POST")).read())
        lat.append((time.perf_counter() - t0) * 1000)
        assert r["tokens"] <= budget
        tokens.append(r["tokens"])
        stops[r["retrieval"]["stopped"]] += 1
    lat.sort()
    print(json.dumps({"max_tokens": budget, "queries": len(queries), "p50_ms": round(lat[len(lat) // 2], 3),
                      "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3), "mean_tokens": round(sum(tokens) / len(tokens), 1),
                      "stopped": dict(stops)}))
PY
