#!/usr/bin/env bash
# /v1/context on SciFact (glove): ingests the corpus, then asks for context for the 809
# training claims at a few token budgets, one client, and prints latency percentiles,
# tokens used and how assembly stopped.
# Usage: bench/context_bench.sh [queries, default 300]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-300}
bin="$root/build/bin/contextd"
[ -x "$bin" ] || { echo "build first: scripts/build" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
  [ -n "${ctx_pid:-}" ] && kill "$ctx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --port 0 --data "$work/data" --models "$root/models" > "$work/ctx.out" 2> "$work/ctx.log" &
ctx_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/ctx.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/ctx.out")
url=${url%/}
curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
"$bin" ingest --url "$url" --collection scifact "$root/../shared/data/scifact/corpus.jsonl" > /dev/null
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
