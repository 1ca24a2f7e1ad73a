#!/usr/bin/env bash
# A write larger than one NATS message (issue 19): one 16 MB document (GloVe) upserted into
# a single node and into a 3-node cluster (scripts/cluster, NATS's default 1 MB
# max_payload, so the log record goes in as parts and an index), ROUNDS times each; prints
# each write's status and seconds, and the text length node 3 reads back with the write's
# token. Every process shares this machine's cores: compare the two sides of one run.
# Usage: bench/cluster_large_write.sh [ROUNDS, default 2]
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
rounds=${1:-2}
python3 - "$work/doc.json" <<'PY'
import json, random, sys
random.seed(1)
w = ['alpha','beta','gamma','delta','tea','green','leaves','water','river','mountain',
     'quick','brown','fox','jumps','over','lazy','dog','cat','banks','rates']
t = ' '.join(random.choice(w) + str(random.randint(0, 9999)) for _ in range(110000))[:1000000]
open(sys.argv[1], 'w').write(json.dumps({'documents': [{'id': 'big1', 'text': (t * 17)[1:16000001]}]}))
PY
write() {  # url label
  curl -s -o /dev/null -X DELETE "$1/v1/collections/big"
  curl -sf -o /dev/null -X PUT "$1/v1/collections/big" -d '{"embedder":"glove"}'
  local t0 t1 code
  t0=$(date +%s.%N)
  code=$(curl -s -o "$work/reply" -w "%{http_code}" "$1/v1/collections/big/documents" --data-binary "@$work/doc.json")
  t1=$(date +%s.%N)
  echo "$2 HTTP $code write_s $(python3 -c "print(round($t1 - $t0, 2))")"
}
start_contextd
for _ in $(seq "$rounds"); do write "$url" single; done
kill "${bench_pids[-1]}"

export BASE_PORT=${BASE_PORT:-18081}
"$root/scripts/cluster" down > /dev/null
rm -rf "$root/cluster"
"$root/scripts/cluster" up 3 > /dev/null
trap '"$root/scripts/cluster" down > /dev/null; bench_cleanup' EXIT
node1="http://127.0.0.1:$BASE_PORT" node3="http://127.0.0.1:$((BASE_PORT + 2))"
for _ in $(seq "$rounds"); do
  write "$node1" cluster
  token=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['write_token'])" "$work/reply")
  curl -s -H "X-Contextd-Write-Token: $token" "$node3/v1/collections/big/documents/big1" |
    python3 -c "import json, sys; print('  node 3 reads', len(json.load(sys.stdin)['text']), 'characters')"
done
