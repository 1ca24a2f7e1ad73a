#!/usr/bin/env bash
# Issue 5: an embedding cache hit through HTTP. Starts a fake provider (bench/fake_provider,
# a real HTTP server costing --call-us per call) and contextd with that provider configured,
# embeds one text once (a miss that fills the cache), then drives POST /v1/embeddings with
# the same text with wrk: every request after the first is an L1 hit.
# Usage: bench/embed_http_bench.sh [seconds per wrk run, default 10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
bin="$root/build/bin"
[ -x "$bin/contextd" ] && [ -x "$bin/fake_provider" ] || { echo "build first: scripts/build" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
  [ -n "${ctx_pid:-}" ] && kill "$ctx_pid" 2>/dev/null || true
  [ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_url() {  # file -> the URL printed as "listening on URL"
  for _ in $(seq 100); do grep -q "listening on" "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$1" | head -1
}

"$bin/fake_provider" --dim 384 --call-us 20000 > "$work/fake.out" &
fake_pid=$!
fake_url=$(wait_url "$work/fake.out")
cat > "$work/config.json" <<CONF
{"embedding": {"providers": {"fake": {"protocol": "openai", "urls": ["$fake_url"], "model": "m", "dim": 384}}}}
CONF
"$bin/contextd" serve --port 0 --data "$work/data" --models "$root/models" --config "$work/config.json" \
  > "$work/ctx.out" 2> "$work/ctx.log" &
ctx_pid=$!
url=$(wait_url "$work/ctx.out")
url=${url%/}

body='{"model":"provider:fake","input":"How do I learn to cook well?"}'
miss_ms=$(curl -sf -o /dev/null -w '%{time_total}' "$url/v1/embeddings" -d "$body" | awk '{print $1*1000}')
echo "{\"first_request_ms\":$miss_ms}"

for conns in 1 8 32; do
  BODY=$body LABEL=l1_hit CONNS=$conns wrk -t1 -c$conns -d"${secs}s" -s "$root/bench/post_body.lua" \
    "$url/v1/embeddings" | grep '^{'
done
curl -sf "$url/metrics" | grep -E '^contextd_embed_(cache_requests_total|computed_total)' || true
