#!/usr/bin/env bash
# Overload: what contextd does at ten times what it can serve. One server (scripts/run's
# defaults but --max-queue-delay-ms QUEUE_DELAY_MS, default 5; 0 turns it off) with
# SciFact (GloVe); `contextd loadtest` drives vector queries (claims from the training
# queries, k 10, "ef" 10000, "cache":"bypass"), each with a 100 ms deadline
# (X-Request-Timeout-Ms), over CONNS keep-alive connections (default 1000) driven by the
# generator's one event-driven thread. BODY replaces the request (a JSON object with
# "{{text}}"); SERVE_FLAGS adds flags to the server's (e.g. --io-coalesce-us 0 to compare).
#
# Two machines on one: the server runs on CPU 0 and the generator on CPU 1 (SERVER_CPUS,
# GEN_CPUS). On this VM one HTTP exchange costs about 65 us of CPU on each side (measured
# with 404s), so a generator sharing the server's cores to offer ten times its capacity
# would take the CPU it is measuring. The request is chosen to cost about 3 ms of CPU that
# the result cache cannot remove.
#   1. stress: the rate steps up by 1.1x every 5 s until, in two steps in a row, p99 passes
#      100 ms or more than 10% are refused; the capacity is the most goodput a step served within the 100 ms p99
#      (the knee, where more than 1% first failed, is reported too: the server's own 5 ms
#      queue-delay rule sheds 1-2% well before it saturates, so ten times the knee was not
#      ten times what it can serve),
#   2. baseline: half the capacity for 20 s, the unloaded p99,
#   3. overload: ten times the capacity for SECS seconds,
#   4. paired (see below): alternating 10 s stages at saturation and at ten times.
# Targets (issue 20): goodput at least 90% of capacity, p99 of admitted requests at most 3x
# the unloaded p99, every rejection a fast 429 or 503. Reports are kept in bench/out/.
# Usage: bench/overload_bench.sh [overload seconds, default 60]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shared="$root/../shared/data/scifact"
bin="$root/build/bin/contextd"
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; mkdir -p "$root/bench/out"; cp "$work"/*.report "$root/bench/out/" 2>/dev/null || true; rm -rf "$work"' EXIT
taskset -c "${SERVER_CPUS:-0}" "$bin" serve --port 0 --data "$work/data" --models "$root/models" --max-queue-delay-ms "${QUEUE_DELAY_MS:-5}" ${SERVE_FLAGS:-} \
  > "$work/out" 2> "$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/out" | head -1); url=${url%/}
curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
"$bin" ingest --url "$url" --collection scifact "$shared/corpus.jsonl" > /dev/null
body=${BODY:-'{"query": "{{text}}", "mode": "vector", "k": 10, "ef": 10000, "cache": "bypass"}'}
scenario() {  # profile, extra JSON members
  cat > "$work/$1.json" <<JSON
{"connections": ${CONNS:-1000}, "timeout_ms": 10000, "profile": "$2",
 "requests": [{"name": "query", "method": "POST", "path": "/v1/collections/scifact/query",
   "headers": {"X-Request-Timeout-Ms": "100"},
   "body": $body,
   "texts": "$shared/queries.train.jsonl"}],
 $3}
JSON
}
# Warm-up (graphs built, caches filled), not measured.
scenario warm baseline '"stages": [{"name": "warm", "rate": 150, "seconds": 10}]'
taskset -c "${GEN_CPUS:-1}" "$bin" loadtest --url "$url" --scenario "$work/warm.json" > /dev/null
scenario stress stress '"stress": {"start_rate": 100, "step": 1.1, "step_seconds": 5, "slo_p99_ms": 100, "max_error_rate": 0.01, "saturation_error_rate": 0.1, "patience": 2, "max_steps": 40}'
taskset -c "${GEN_CPUS:-1}" "$bin" loadtest --url "$url" --scenario "$work/stress.json" --out "$work/stress.report" > /dev/null
read -r capacity knee < <(python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print(r["capacity_rps"], r["knee_rate"])' "$work/stress.report")
half=$(python3 -c "print($capacity / 2)") ten=$(python3 -c "print($capacity * 10)")
scenario base baseline "\"stages\": [{\"name\": \"half\", \"rate\": $half, \"seconds\": 20}]"
taskset -c "${GEN_CPUS:-1}" "$bin" loadtest --url "$url" --scenario "$work/base.json" --out "$work/base.report" > /dev/null
scenario over baseline "\"stages\": [{\"name\": \"ten_x\", \"rate\": $ten, \"seconds\": $secs}]"
taskset -c "${GEN_CPUS:-1}" "$bin" loadtest --url "$url" --scenario "$work/over.json" --out "$work/over.report" \
  --chart "$root/bench/out/overload.png" > /dev/null
# 4. paired: the capacity above was measured minutes before the overload, and this VM's
#    speed drifts by a third between minutes, so the ratio also compares goodput in
#    alternating 10 s stages: saturation (1.3x the capacity: the server serves what it can
#    now and sheds the rest, unless it got a third faster meanwhile) and ten times the
#    capacity, PAIRS of each (default 6; 0 skips). Shedding 0.3x costs the saturation stages
#    a few percent, which flatters this ratio by as much.
pairs=${PAIRS:-6}
if [ "$pairs" -gt 0 ]; then
  sat=$(python3 -c "print($capacity * 1.3)")
  stages=$(python3 -c "import json; print(json.dumps([s for k in range($pairs) for s in ({'name': f'sat_{k}', 'rate': $sat, 'seconds': 10}, {'name': f'ten_x_{k}', 'rate': $ten, 'seconds': 10})]))")
  scenario paired baseline "\"stages\": $stages"
  taskset -c "${GEN_CPUS:-1}" "$bin" loadtest --url "$url" --scenario "$work/paired.json" --out "$work/paired.report" > /dev/null
fi
python3 - "$work" "$capacity" "$knee" <<'PY'
import json, os, sys
work, capacity, knee = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
base = json.load(open(f"{work}/base.report"))["stages"][0]
over = json.load(open(f"{work}/over.report"))["stages"][0]
unloaded_p99 = base["latency_admitted"]["p99_ms"]
def paired(stages):
  sat = [s for s in stages if s["name"].startswith("sat_")]
  ten = [s for s in stages if s["name"].startswith("ten_x_")]
  return {"saturation_goodput": [round(s["goodput"], 1) for s in sat],
          "ten_x_goodput": [round(s["goodput"], 1) for s in ten],
          "ten_x_over_saturation": [round(t["goodput"] / max(s["goodput"], 1e-9), 3) for s, t in zip(sat, ten)],
          "overall": round(sum(t["goodput"] for t in ten) / max(sum(s["goodput"] for s in sat), 1e-9), 3),
          "ten_x_admitted_p99_ms": [t["latency_admitted"]["p99_ms"] for t in ten],
          "ten_x_statuses": [t["statuses"] for t in ten]}
print(json.dumps({
  "capacity_rps": round(capacity, 1), "knee_rps": round(knee, 1), "unloaded": {"rate": base["offered_rate"], "goodput": round(base["goodput"], 1),
                                     "p50_ms": base["latency_admitted"]["p50_ms"], "p99_ms": unloaded_p99},
  "overload": {"rate": over["offered_rate"], "seconds": over["seconds"], "goodput": round(over["goodput"], 1),
               "goodput_over_capacity": round(over["goodput"] / capacity, 3), "statuses": over["statuses"],
               "admitted_p50_ms": over["latency_admitted"]["p50_ms"], "admitted_p99_ms": over["latency_admitted"]["p99_ms"],
               "admitted_p99_over_unloaded": round(over["latency_admitted"]["p99_ms"] / max(unloaded_p99, 1e-9), 2),
               "rejected_p50_ms": over["latency_rejected"]["p50_ms"], "rejected_p99_ms": over["latency_rejected"]["p99_ms"],
               "all_p99_ms": over["latency"]["p99_ms"],
               "only_200_429_503": all(k in ("200", "429", "503") for k in over["statuses"])},
  **({"paired": paired(json.load(open(f"{work}/paired.report"))["stages"])} if os.path.exists(f"{work}/paired.report") else {})},
  indent=1))
PY
