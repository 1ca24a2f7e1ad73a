#!/usr/bin/env bash
# Soak (issue 23): contextd with scripts/run's defaults and SciFact (GloVe) under a steady
# mix for MINUTES: keyword and hybrid queries, /v1/context, small upserts that replace a
# fixed set of documents, and large bodies (1 MB /v1/embeddings, 4 MB upserts of one
# document that is deleted again). `contextd loadtest`'s soak profile samples the server's
# resident memory every 5 s. Prints the status mix and latency, then RSS at the
# end of warm-up (the first 20% of the run), its min and max afterwards, and, per minute
# after warm-up, its floor and median: flat when the second half's mean of each is within
# 10% of the first half's (peaks ride on the large bodies in flight, which
# max_body_bytes_in_flight bounds).
# Usage: bench/soak.sh [MINUTES, default 30] [RATE requests/s, default 40]
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
minutes=${1:-30} rate=${2:-40}
shared="$root/../shared/data/scifact"
start_contextd
ingest_scifact
python3 - "$work" "$shared/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(7)
work, corpus = sys.argv[1], sys.argv[2]
texts = [json.loads(l)["text"] for l in open(corpus)]
def big(n):
    out = []
    while sum(map(len, out)) < n:
        out.append(random.choice(texts))
    return " ".join(out)[:n]
with open(f"{work}/mb1.txt", "w") as f:
    for _ in range(3): f.write(json.dumps({"text": big(1_000_000)}) + "\n")
with open(f"{work}/mb4.txt", "w") as f:
    for _ in range(2): f.write(json.dumps({"text": big(4_000_000)}) + "\n")
with open(f"{work}/small.txt", "w") as f:
    for t in texts[:2000]: f.write(json.dumps({"text": t}) + "\n")
PY
q="$shared/queries.train.jsonl"
c="/v1/collections/scifact"
cat > "$work/soak.json" <<JSON
{"connections": 32, "timeout_ms": 60000, "profile": "soak",
 "soak": {"rate": $rate, "seconds": $((minutes * 60)), "sample_seconds": 5},
 "requests": [
  {"name": "keyword", "weight": 40, "method": "POST", "path": "$c/query",
   "body": {"query": "{{text}}", "mode": "keyword", "k": 10}, "texts": "$q"},
  {"name": "hybrid", "weight": 20, "method": "POST", "path": "$c/query",
   "body": {"query": "{{text}}", "mode": "hybrid", "k": 10, "cache": "bypass"}, "texts": "$q"},
  {"name": "context", "weight": 10, "method": "POST", "path": "/v1/context",
   "body": {"collection": "scifact", "query": "{{text}}", "max_tokens": 1500}, "texts": "$q"},
  {"name": "upsert", "weight": 20, "method": "POST", "path": "$c/documents",
   "body": {"documents": [{"id": "soak-small", "text": "{{text}}"}]}, "texts": "$work/small.txt"},
  {"name": "embed_1mb", "weight": 1, "method": "POST", "path": "/v1/embeddings",
   "body": {"model": "glove", "input": "{{text}}"}, "texts": "$work/mb1.txt"},
  {"name": "upsert_4mb", "weight": 0.5, "method": "POST", "path": "$c/documents",
   "body": {"documents": [{"id": "soak-big", "text": "{{text}}"}]}, "texts": "$work/mb4.txt"},
  {"name": "delete", "weight": 0.5, "method": "DELETE", "path": "$c/documents/soak-big"}]}
JSON
"$bin/contextd" loadtest --url "$url" --scenario "$work/soak.json" --out "$work/soak.report" \
  --chart "$root/bench/out/soak.png" > /dev/null
python3 - "$work/soak.report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
st = r["stages"][0]
print(json.dumps({k: st[k] for k in ("offered_rate", "requests", "goodput", "statuses", "latency")}))
mem = r["memory"]
end = max(p["t_s"] for p in mem)
warm = [p for p in mem if p["t_s"] <= 0.2 * end]
after = [p for p in mem if p["t_s"] > 0.2 * end]
level = warm[-1]["rss_bytes"] / 2**20
# Per minute after warm-up: the floor (what stays: growth shows here first), the median
# and the peak (large bodies in flight: bounded by max_body_bytes_in_flight, not by time).
minutes = {}
for p in after:
    minutes.setdefault(int(p["t_s"] // 60), []).append(p["rss_bytes"] / 2**20)
floors = [min(v) for _, v in sorted(minutes.items())]
medians = [sorted(v)[len(v) // 2] for _, v in sorted(minutes.items())]
# Flat: no trend. The second half's mean within 10% of the first half's (a minute's value
# swings with which large bodies happened to be in flight; growth would show as a trend).
def flat(xs):
    half = len(xs) // 2
    a, b = sum(xs[:half]) / half, sum(xs[half:]) / (len(xs) - half)
    return abs(b - a) <= 0.1 * a, round(100 * (b - a) / a, 1)
print(json.dumps({"samples": len(mem), "rss_after_warmup_mb": round(level, 1),
                  "min_mb": round(min(p["rss_bytes"] for p in after) / 2**20, 1),
                  "max_mb": round(max(p["rss_bytes"] for p in after) / 2**20, 1),
                  "last_mb": round(after[-1]["rss_bytes"] / 2**20, 1),
                  "floor_per_minute_mb": [round(x) for x in floors],
                  "median_per_minute_mb": [round(x) for x in medians],
                  "floor_flat_within_10pct": flat(floors)[0], "floor_second_half_vs_first_pct": flat(floors)[1],
                  "median_flat_within_10pct": flat(medians)[0], "median_second_half_vs_first_pct": flat(medians)[1],
                  "every_sample_within_10pct": all(0.9 * level <= p["rss_bytes"] / 2**20 <= 1.1 * level for p in after)}))
PY
