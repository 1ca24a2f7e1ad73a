#!/usr/bin/env bash
# Hybrid fusion quality on SciFact's 809 judged training claims (issue 22, part 2): keyword,
# vector (glove) and hybrid with the default fusion (auto: each list weighed per query by
# the spread of its scores), reciprocal rank fusion and weighted fusion, through HTTP with
# `contextd eval` (nDCG@10, recall@100, MRR@10). Usage: bench/hybrid_fusion.sh
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
start_contextd
ingest_scifact
data="$root/../shared/data/scifact"
run() {
  printf '%-34s ' "$1"
  "$bin/contextd" eval --url "$url" --collection scifact --queries "$data/queries.train.jsonl" \
    --qrels "$data/qrels/train.tsv" --mode "$2" --params "${3:-{\}}" | tail -1
}
run "keyword" keyword
run "vector (glove)" vector
run "hybrid, default (auto)" hybrid
run "hybrid, rrf" hybrid '{"fusion":"rrf"}'
run "hybrid, weighted alpha 0.15" hybrid '{"fusion":"weighted","alpha":0.15}'
run "hybrid, auto, depth 40" hybrid '{"depth":40}'
