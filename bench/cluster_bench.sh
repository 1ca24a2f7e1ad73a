#!/usr/bin/env bash
# Cluster mode against one node, in one sitting on this machine (every process shares the
# same cores, so the ratios are what to read):
#   1. SciFact's durable ingest (GloVe) through one node of a 3-node cluster (3 nats-servers,
#      every write acknowledged by a JetStream quorum and applied on all three nodes before
#      the next node's reply... each node applies every write) against a single node.
#   2. Hybrid and keyword QPS at 32 clients on one cluster node against the single node, and
#      the server CPU per query (every server process's CPU over the requests answered).
#   3. The write pause when the stream's leader nats-server is killed (-9): the longest
#      single write while one write at a time runs.
#   4. The read-error window when a data node is killed (-9): hybrid queries one at a time
#      through node 1 while node 3 dies; failed answers, answers missing shards
#      ("coverage"), and how long after the kill the last of them came.
# The collection has topic shards (max_shard_chunks 1000: about 15 for SciFact), each held
# by two of the three nodes, so cluster queries gather parts from the other nodes.
# Usage: bench/cluster_bench.sh [seconds per wrk run, default 8]; INGEST_RUNS=N ingests N
# times on each side, the sides taking turns (the collection dropped and made again each
# time), INGEST_ONLY=1 stops after;
# INGEST_PARALLEL=N requests in flight (default 4, contextd ingest's own default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-8}
shared="$root/../shared/data/scifact"
bin="$root/build/bin/contextd"
export BASE_PORT=${BASE_PORT:-18081}

prepare() {  # url [other nodes' urls...]: the collection made again, empty
  curl -sf -X DELETE "$1/v1/collections/scifact" > /dev/null 2>&1 || true
  local token other
  token=$(curl -sf -D - -o /dev/null -X PUT "$1/v1/collections/scifact" \
    -d '{"embedder":"glove","sharding":{"max_shard_chunks":1000}}' |
    sed -n 's/^[Xx]-[Cc]ontextd-[Ww]rite-[Tt]oken: *\([0-9]*\).*/\1/p')
  # The other nodes apply the drop of the last run's collection and the create before the
  # clock starts (the single node did both before answering).
  for other in "${@:2}"; do
    curl -sf -H "X-Contextd-Write-Token: $token" "$other/v1/collections/scifact" > /dev/null
  done
}
ingest() {  # url
  local t0 t1; t0=$(date +%s.%N)
  "$bin" ingest --url "$1" --collection scifact --parallel "${INGEST_PARALLEL:-4}" "$shared/corpus.jsonl" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "print(round($t1-$t0,2))"
}
# CPU seconds (user + system) each process spent while the command after the names ran:
# with every process on the same two cores, the wall-clock ratio says what the cluster costs
# this box; the per-process figures say what each machine would spend on it apart.
cpu_during() {  # "name=pid ..." command...
  local procs=$1; shift
  local -A before
  for np in $procs; do before[$np]=$(awk '{print $14 + $15}' "/proc/${np#*=}/stat"); done
  "$@"
  local line="" tick; tick=$(getconf CLK_TCK)
  for np in $procs; do
    line+=" ${np%%=*}=$(awk -v b="${before[$np]}" -v t="$tick" '{printf "%.2f", ($14 + $15 - b) / t}' "/proc/${np#*=}/stat")"
  done
  echo "$line"
}
# Server CPU per query: every server process's CPU (for the cluster: the nodes, the
# nats-servers and redis) over the requests wrk completed; the issue's target is the
# cluster's at most 1.3 times the single node's.
queries() {  # url label "name=pid ..."
  local mode cpu
  for mode in hybrid keyword; do
    cpu=$(cpu_during "$3" env QUERIES="$shared/queries.train.jsonl" MODE=$mode K=10 COLLECTION=scifact \
      wrk -t2 -c32 -d"${secs}s" -s "$root/bench/query.lua" "$1")
    python3 - "$2" "$cpu" <<'PY'
import json, re, sys
label, out = sys.argv[1], sys.argv[2].splitlines()
run = json.loads(next(l for l in out if l.startswith("{")))
cpu = sum(float(v) for v in re.findall(r"=([\d.]+)", out[-1]))
run["server_cpu_s"] = round(cpu, 2)
run["server_cpu_us_per_query"] = round(cpu * 1e6 / max(run["requests"], 1), 1)
print(label, json.dumps(run))
PY
  done
}

work=$(mktemp -d)
"$bin" serve --port 0 --data "$work/single" --models "$root/models" > "$work/out" 2> "$work/log" &
single=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/out" | head -1); url=${url%/}
"$root/scripts/cluster" down > /dev/null
rm -rf "$root/cluster"
"$root/scripts/cluster" up 3 > /dev/null
node1="http://127.0.0.1:$BASE_PORT"
procs=""
for f in "$root"/cluster/pids/*; do procs+="$(basename "$f")=$(cat "$f") "; done
# The two sides take turns, so a slow minute on this shared machine falls on both alike (it
# used to fall on one side's runs, moving the ratio by up to a third); the idle side's
# background work (heartbeats) is a few CPU ms per run. Each side settles before the other
# runs: replicas finish applying and the stores flush their memtables (after 1 s idle).
settle() { sleep "${INGEST_SETTLE:-3}"; }
for _ in $(seq "${INGEST_RUNS:-1}"); do
  prepare "$url"
  cpu_during "contextd=$single" ingest "$url" > "$work/cpu"
  echo "single ingest_s $(head -1 "$work/cpu") cpu_s$(tail -1 "$work/cpu")" | tee -a "$work/ingest"
  settle
  prepare "$node1" "http://127.0.0.1:$((BASE_PORT + 1))" "http://127.0.0.1:$((BASE_PORT + 2))"
  cpu_during "$procs" ingest "$node1" > "$work/cpu"
  echo "cluster ingest_s $(head -1 "$work/cpu") cpu_s$(tail -1 "$work/cpu")" | tee -a "$work/ingest"
  settle
done
# Means over the runs after the first (it warms the nats-servers) when there are several,
# and the median of each turn's ratio. cpu_ratio, the single node's CPU over all the
# cluster's processes' together: what the ratio tends to on a box the cluster keeps busy
# (the single node leaves some of it idle).
python3 - "$work/ingest" <<'PY'
import json, re, statistics, sys
runs = {"single": [], "cluster": []}
for line in open(sys.argv[1]):
    side, _, secs, _, *cpu = line.split()
    runs[side].append((float(secs), sum(float(v) for v in re.findall(r"=([\d.]+)", " ".join(cpu)))))
mean = lambda xs: sum(xs) / len(xs)
used = {k: v[1:] if len(v) > 1 else v for k, v in runs.items()}
s, c = (mean([r[0] for r in used[k]]) for k in ("single", "cluster"))
sc, cc = (mean([r[1] for r in used[k]]) for k in ("single", "cluster"))
turns = [a[0] / b[0] for a, b in zip(used["single"], used["cluster"])]
print("ingest_summary " + json.dumps({"single_s": round(s, 3), "cluster_s": round(c, 3), "ratio": round(s / c, 3),
                                      "median_turn_ratio": round(statistics.median(turns), 3),
                                      "single_cpu_s": round(sc, 2), "cluster_cpu_s": round(cc, 2),
                                      "cpu_ratio": round(sc / cc, 3)}))
PY
if [ -n "${INGEST_ONLY:-}" ]; then
  kill "$single"; wait "$single" 2>/dev/null || true
  "$root/scripts/cluster" down > /dev/null
  rm -rf "$work"
  exit 0
fi
queries "$url" single "contextd=$single"
kill "$single"; wait "$single" 2>/dev/null || true
queries "$node1" cluster "$procs"

# 3. kill the stream's leader during one-at-a-time writes
leader=$(curl -sf "$node1/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["log"]["leader"])')
python3 - "$node1" "$root/cluster/pids/$leader" <<'PY'
import json, os, signal, sys, time, urllib.request
url, pidfile = sys.argv[1], sys.argv[2]
def write(i):
    body = json.dumps({"documents": [{"id": f"k{i}", "text": f"write {i} about cells"}]}).encode()
    req = urllib.request.Request(url + "/v1/collections/scifact/documents", data=body, method="POST")
    t = time.time()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
    return time.time() - t
for i in range(20): write(i)
os.kill(int(open(pidfile).read()), signal.SIGKILL)
t0 = time.time(); longest = 0; n = 0
while time.time() - t0 < 15:
    longest = max(longest, write(100 + n)); n += 1
print(json.dumps({"leader_killed": True, "writes_in_15s": n, "longest_write_s": round(longest, 2)}))
PY

# 4. kill a data node (not the one queried) during one-at-a-time hybrid queries
python3 - "$node1" "$root/cluster/pids/node3" "$shared/queries.train.jsonl" <<'PY'
import json, os, signal, sys, time, urllib.request, urllib.error
url, pidfile, queries = sys.argv[1], sys.argv[2], sys.argv[3]
texts = [json.loads(l)["text"] for l in open(queries)]
def query(i):
    body = json.dumps({"query": texts[i % len(texts)], "k": 10, "mode": "hybrid", "cache": "bypass"}).encode()
    req = urllib.request.Request(url + "/v1/collections/scifact/query", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            c = json.load(r).get("coverage", {})
            return "ok" if c.get("answered") == c.get("shards") else "partial"
    except (urllib.error.URLError, OSError):
        return "error"
for i in range(50): query(i)
os.kill(int(open(pidfile).read()), signal.SIGKILL)
t0 = time.time(); n = 0; counts = {"ok": 0, "partial": 0, "error": 0}; last_bad = 0.0
while time.time() - t0 < 15:
    r = query(n); n += 1; counts[r] += 1
    if r != "ok": last_bad = time.time() - t0
print(json.dumps({"data_node_killed": True, "queries_in_15s": n, "failed": counts["error"],
                  "missing_shards": counts["partial"], "last_bad_answer_after_s": round(last_bad, 2)}))
PY
"$root/scripts/cluster" down > /dev/null
rm -rf "$work"
