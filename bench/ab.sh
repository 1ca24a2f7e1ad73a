#!/usr/bin/env bash
# A/B of two contextd binaries in one sitting, interleaved round by round: for each, a fresh
# server, SciFact's durable ingest through `contextd ingest` (timed), concurrent one-document
# upserts (wrk -c32, bench/upsert.lua), then hybrid and keyword queries (wrk -t2 -c32,
# bench/query.lua, cache bypassed).
# Usage: bench/ab.sh BIN_A BIN_B [rounds, default 2] [seconds per wrk run, default 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared="$root/../shared/data/scifact"
a=$1 b=$2 rounds=${3:-2} secs=${4:-8}
run() {
  local bin=$1 label=$2 work; work=$(mktemp -d)
  "$bin" serve --port 0 --data "$work/data" --models "$root/models" > "$work/out" 2> "$work/log" &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  local url; url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/out" | head -1); url=${url%/}
  curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
  local t0 t1; t0=$(date +%s.%N)
  "$bin" ingest --url "$url" --collection scifact "$shared/corpus.jsonl" > /dev/null
  t1=$(date +%s.%N)
  echo "$label ingest_s $(python3 -c "print(round($t1-$t0,2))")"
  COLLECTION=scifact wrk -t2 -c32 -d"${secs}s" -s "$root/bench/upsert.lua" "$url" | grep '^{' | sed "s/^/$label /"
  for mode in hybrid keyword; do
    QUERIES="$shared/queries.train.jsonl" MODE=$mode K=10 COLLECTION=scifact \
      wrk -t2 -c32 -d"${secs}s" -s "$root/bench/query.lua" "$url" | grep '^{' | sed "s/^/$label /"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$work"
}
for _ in $(seq "$rounds"); do
  run "$a" A
  run "$b" B
done
