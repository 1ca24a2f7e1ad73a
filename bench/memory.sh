#!/usr/bin/env bash
# Resident memory under large requests (issue 23): contextd with scripts/run's defaults,
# then 80 /v1/embeddings calls of 1 MB text (8 at a time) and ROUNDS rounds of four
# concurrent 16 MB upserts deleted again. Prints RSS, the peak (VmHWM) and RocksDB's
# memtables after each step. Usage: bench/memory.sh [ROUNDS] [contextd serve flags...], e.g.
# bench/memory.sh 2 --max-body-bytes-in-flight 20000000 (one 16 MB body in flight at a time)
# ALLOCATOR_STATS=FILE also writes jemalloc's statistics (malloc_stats_print, called in the
# idle server through gdb) at the baseline and at the end to FILE: thread caches
# (tcache_bytes), metadata (base), slabs per size class (bins: curslabs, util).
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
rounds=${1:-4}
start_contextd "${@:2}"
pid=${bench_pids[-1]}
status() { awk -v k="$1" '$1 == k":" {print int($2 / 1024)}' "/proc/$pid/status"; }
store_mb() { curl -s "$url/metrics" | awk '$1 == "contextd_store_memory_bytes" {print int($2 / 1048576)}'; }
# RssFile: mapped files (the GloVe model's pages, touched by the texts embedded); RssAnon:
# the heap and stacks, what large requests could leave behind.
# The allocator's live heap blocks against what it holds resident (contextd_allocator_*).
heap() {
  curl -s "$url/metrics" | awk '$1 ~ /^contextd_allocator_allocated_bytes/ {a = int($2 / 1048576)}
    $1 ~ /^contextd_allocator_resident_bytes/ {r = int($2 / 1048576)} END {print a " MB live of " r " MB held"}'
}
report() {
  echo "$1: rss $(status VmRSS) MB (anon $(status RssAnon), files $(status RssFile)), peak $(status VmHWM) MB," \
    "rocksdb memtables $(store_mb) MB, heap $(heap)"
}
python3 - "$work" <<'PY'
import json, random, sys
random.seed(1)
w = ['alpha','beta','gamma','delta','tea','green','leaves','water','river','mountain',
     'quick','brown','fox','jumps','over','lazy','dog','cat','banks','rates']
t = ' '.join(random.choice(w) + str(random.randint(0, 9999)) for _ in range(110000))[:1000000]
open(sys.argv[1] + '/emb.json', 'w').write(json.dumps({'model': 'glove', 'input': t}))
for i in range(1, 5):
    big = (t * 17)[i:16000000 + i]
    open(f'{sys.argv[1]}/up{i}.json', 'w').write(json.dumps({'documents': [{'id': f'big{i}', 'text': big}]}))
PY
allocator_stats() {
  [ -n "${ALLOCATOR_STATS:-}" ] || return 0
  gdb -p "$pid" -batch -ex 'call (void)malloc_stats_print(0, 0, "")' > /dev/null 2>&1
  sleep 1
  sed -n '/___ Begin jemalloc statistics ___/,/--- End jemalloc statistics ---/p' "$work/ctx.log" > "$ALLOCATOR_STATS"
}
report "baseline"
allocator_stats
seq 1 80 | xargs -P 8 -I{} curl -s -o /dev/null "$url/v1/embeddings" --data-binary "@$work/emb.json"
sleep 3  # idle: the server hands free memory back at its first look (every 1 s) after work
report "after 80 x 1 MB embeddings"
curl -s -o /dev/null -X PUT "$url/v1/collections/docs" -d '{"embedder":"glove"}'
for round in $(seq 1 "$rounds"); do
  printf "1\n2\n3\n4\n" | xargs -P 4 -I{} curl -s -o /dev/null "$url/v1/collections/docs/documents" \
    --data-binary "@$work/up{}.json"
  for i in 1 2 3 4; do curl -s -o /dev/null -X DELETE "$url/v1/collections/docs/documents/big$i"; done
  sleep 3  # idle: the server hands free memory back at its first look (every 1 s) after work
  report "round $round: after 4 x 16 MB upserts, deleted"
done
allocator_stats
