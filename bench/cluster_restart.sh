#!/usr/bin/env bash
# A cluster node's restart after kill -9, with graphs to rebuild (nothing saved them):
#   1. a 3-node cluster (scripts/cluster) ingests N clustered 64-d vectors through node 1
#      into a collection with topic shards of up to 20,000 chunks;
#   2. node 3 is killed (-9) once every node applied everything, and restarted as it ran;
#      the script reports the seconds to /readyz and, from node 3's log, how long its open
#      took and how long linking the shards it holds took afterwards;
#   3. for comparison, the same binary opens a copy of node 3's data as a single node,
#      which links every shard's graph before it is ready (what a cluster node did too
#      before it deferred the links to its router).
# Usage: bench/cluster_restart.sh [N, default 120000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-120000}
export BASE_PORT=${BASE_PORT:-18081}
node1="http://127.0.0.1:$BASE_PORT"
node3="http://127.0.0.1:$((BASE_PORT + 2))"
"$root/scripts/cluster" down > /dev/null
rm -rf "$root/cluster"
"$root/scripts/cluster" up 3 > /dev/null
trap '"$root/scripts/cluster" down > /dev/null' EXIT
curl -sf -X PUT "$node1/v1/collections/big" \
  -d '{"embedder":"none","dim":64,"sharding":{"max_shard_chunks":20000}}' > /dev/null
python3 - "$node1" "$n" <<'PY'
import json, random, sys, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
centres = [[rng.gauss(0, 1) for _ in range(64)] for _ in range(32)]
batch = 2000
for first in range(0, n, batch):
    docs = []
    for i in range(first, min(n, first + batch)):
        c = centres[i % len(centres)]
        docs.append({"id": f"v{i}", "text": f"point {i}", "vector": [round(x + rng.gauss(0, 0.3), 4) for x in c]})
    req = urllib.request.Request(url + "/v1/collections/big/documents", data=json.dumps({"documents": docs}).encode(),
                                 method="POST")
    urllib.request.urlopen(req, timeout=300).read()
PY
# Every node has applied every write when each holds all n chunks.
for p in 0 1 2; do
  for _ in $(seq 600); do
    chunks=$(curl -sf "http://127.0.0.1:$((BASE_PORT + p))/v1/admin/digest" | python3 -c \
      'import json,sys; print(sum(c["chunks"] for c in json.load(sys.stdin)["collections"]))')
    [ "$chunks" = "$n" ] && break
    sleep 0.5
  done
done
cmdline=$(tr '\0' ' ' < "/proc/$(cat "$root/cluster/pids/node3")/cmdline")
kill -9 "$(cat "$root/cluster/pids/node3")"
sleep 1
cp -r "$root/cluster/node3" "$root/cluster/node3-copy"
log="$root/cluster/logs/node3-restart.log"
t0=$(date +%s.%N)
$cmdline > /dev/null 2> "$log" &
echo $! > "$root/cluster/pids/node3"
until curl -sf "$node3/readyz" > /dev/null 2>&1; do sleep 0.05; done
t1=$(date +%s.%N)
for _ in $(seq 1200); do grep -q "stored chunks into the graphs" "$log" && break; sleep 0.1; done
t2=$(date +%s.%N)
python3 -c "print('cluster node 3 restart: ready after', round($t1-$t0,2), 's; its shards linked', round($t2-$t0,2), 's after the start')"
grep -E "loaded|linked" "$log" | sed 's/^/  /'
# The same data opened as a single node: every graph linked before it is ready.
port=$((BASE_PORT + 9))
t0=$(date +%s.%N)
"$root/build/bin/contextd" serve --host 127.0.0.1 --port "$port" --data "$root/cluster/node3-copy" \
  --models "$root/models" > /dev/null 2> "$root/cluster/logs/single.log" &
single=$!
until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null 2>&1; do sleep 0.05; done
t1=$(date +%s.%N)
python3 -c "print('node 3 data as a single node: ready after', round($t1-$t0,2), 's')"
grep -E "loaded" "$root/cluster/logs/single.log" | sed 's/^/  /'
kill "$single"
wait "$single" 2> /dev/null || true
