#!/usr/bin/env bash
# Query A/B of two contextd binaries served side by side: both servers up at once, both
# ingest SciFact, then keyword and hybrid queries alternate between them round by round
# (wrk -t2 -c32, bench/query.lua, cache bypassed), so the host's slow spells hit both.
# Usage: bench/ab_live.sh BIN_A BIN_B [rounds, default 4] [seconds per wrk run, default 5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared="$root/../shared/data/scifact"
a=$1 b=$2 rounds=${3:-4} secs=${4:-5}
pids=()
start() {
  local bin=$1 work=$2
  "$bin" serve --port 0 --data "$work/data" --models "$root/models" > "$work/out" 2> "$work/log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  local url; url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/out" | head -1); echo "${url%/}"
}
wa=$(mktemp -d) wb=$(mktemp -d)
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$wa" "$wb"' EXIT
ua=$(start "$a" "$wa"); ub=$(start "$b" "$wb")
for u in "$ua" "$ub"; do
  curl -sf -X PUT "$u/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
  "$a" ingest --url "$u" --collection scifact "$shared/corpus.jsonl" > /dev/null
done
for _ in $(seq "$rounds"); do
  for side in "A $ua" "B $ub"; do
    set -- $side
    for mode in keyword hybrid; do
      QUERIES="$shared/queries.train.jsonl" MODE=$mode K=10 COLLECTION=scifact \
        wrk -t2 -c32 -d"${secs}s" -s "$root/bench/query.lua" "$2" | grep '^{' | sed "s/^/$1 /"
    done
  done
done
