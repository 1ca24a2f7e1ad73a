#!/usr/bin/env bash
# Issue 5: an embedding cache hit through HTTP. Starts a fake provider (bench/fake_provider,
# a real HTTP server costing --call-us per call) and contextd with that provider configured,
# embeds one text once (a miss that fills the cache), then drives POST /v1/embeddings with
# the same text with wrk: every request after the first is an L1 hit.
# Usage: bench/embed_http_bench.sh [seconds per wrk run, default 10]
set -euo pipefail
secs=${1:-10}
. "$(dirname "$0")/serve_lib.sh"
[ -x "$bin/fake_provider" ] || { echo "build first: scripts/build" >&2; exit 1; }

"$bin/fake_provider" --dim 384 --call-us 20000 > "$work/fake.out" &
bench_pids+=("$!")
fake_url=$(wait_url "$work/fake.out")
cat > "$work/config.json" <<CONF
{"embedding": {"providers": {"fake": {"protocol": "openai", "urls": ["$fake_url"], "model": "m", "dim": 384}}}}
CONF
start_contextd --config "$work/config.json"

body='{"model":"provider:fake","input":"How do I learn to cook well?"}'
miss_ms=$(curl -sf -o /dev/null -w '%{time_total}' "$url/v1/embeddings" -d "$body" | awk '{print $1*1000}')
echo "{\"first_request_ms\":$miss_ms}"

for conns in 1 8 32; do
  BODY=$body LABEL=l1_hit CONNS=$conns wrk -t1 -c$conns -d"${secs}s" -s "$root/bench/post_body.lua" \
    "$url/v1/embeddings" | grep '^{'
done
curl -sf "$url/metrics" | grep -E '^contextd_embed_(cache_requests_total|computed_total)' || true
