#!/usr/bin/env bash
# Issue 7: an LLM-cache hit through HTTP. Starts contextd, creates a namespace (glove),
# stores the Quora questions as prompts (one scope), then drives POST /v1/cache/{ns}/lookup
# with wrk: an exact repeat of a stored prompt, and a paraphrase (semantic hit: embedding +
# HNSW lookup).
# Usage: bench/llm_cache_http_bench.sh [seconds per wrk run, default 10] [prompts, default 5000]
set -euo pipefail
secs=${1:-10}
prompts=${2:-5000}
. "$(dirname "$0")/serve_lib.sh"
start_contextd
curl -sf -X PUT "$url/v1/cache/qa" -d '{"embedder":"glove","threshold":0.9}' > /dev/null
python3 - "$url" "$prompts" "$root/../shared/data/quora/questions.csv" <<'PY'
import json, sys, urllib.request
url, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path) as f:
    next(f)
    qs = [l.strip() for l in f if l.strip()][:n]
for i, q in enumerate(qs):
    body = json.dumps({"prompt": q, "response": {"answer": i}, "scope": {"model": "m"}}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/v1/cache/qa/store", body, method="POST")).read()
PY
stored=$(curl -sf "$url/v1/cache/qa" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
exact='{"prompt":"How do I learn to cook well?","scope":{"model":"m"}}'
curl -sf "$url/v1/cache/qa/store" -d '{"prompt":"How do I learn to cook well?","response":"practice","scope":{"model":"m"}}' > /dev/null
para='{"prompt":"How can I learn to cook well?","scope":{"model":"m"}}'
echo "{\"stored\":$stored,\"paraphrase_lookup\":$(curl -sf "$url/v1/cache/qa/lookup" -d "$para")}"
for kind in exact paraphrase; do
  body=$exact; [ "$kind" = paraphrase ] && body=$para
  for conns in 1 8; do
    BODY=$body LABEL=$kind CONNS=$conns wrk -t1 -c$conns -d"${secs}s" -s "$root/bench/post_body.lua" \
      "$url/v1/cache/qa/lookup" | grep '^{'
  done
done
curl -sf "$url/metrics" | grep '^contextd_llm_cache_requests_total' || true
