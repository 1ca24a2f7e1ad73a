#!/usr/bin/env bash
# The cost of governance: keyword and hybrid /query QPS over SciFact with auth off, then
# with --auth and a key under a tenant limit and a key limit (both far above the load, so
# every request is authenticated, authorised and charged in two token buckets, none
# refused), then the same with the limits shared through a local redis-server (--redis: one
# Lua script per decision), in one sitting, rounds interleaved.
# Usage: bench/governance_bench.sh [rounds, default 2] [seconds per wrk run, default 8]
# (MODES="off auth" picks the variants; CONTEXTD_BIN another binary; STAT=1 adds the
# server's futex calls per request, counted by perf.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2} secs=${2:-8}
shared="$root/../shared/data/scifact"
bin=${CONTEXTD_BIN:-"$root/build/bin/contextd"}
export CONTEXTD_ADMIN_KEY=bench-admin-key-0123456789
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, in clock ticks
run() {  # label, extra serve args
  local label=$1; shift
  local work; work=$(mktemp -d)
  "$bin" serve --port 0 --data "$work/data" --models "$root/models" "$@" > "$work/out" 2> "$work/log" &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  local url; url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/out" | head -1); url=${url%/}
  local key=""
  local auth=(-H "Authorization: Bearer $CONTEXTD_ADMIN_KEY")
  if [ "$label" != off ]; then
    curl -sf "${auth[@]}" -X POST "$url/v1/admin/tenants" -d '{"id":"bench","limits":{"rpm":100000000,"tpm":1000000000000}}' > /dev/null
    key=$(curl -sf "${auth[@]}" -X POST "$url/v1/admin/tenants/bench/keys" \
      -d '{"role":"writer","limits":{"rpm":100000000,"tpm":1000000000000}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    auth=(-H "Authorization: Bearer $key")
  fi
  curl -sf "${auth[@]}" -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
  "$bin" ingest --url "$url" --collection scifact --api-key "${key:-$CONTEXTD_ADMIN_KEY}" "$shared/corpus.jsonl" \
    > /dev/null
  for mode in keyword hybrid; do
    # The server's own CPU per request too: a steadier measure than QPS on a shared host.
    local before; before=$(cpu_ticks "$pid")
    # STAT=1: the server's futex calls during the run (lock waits and wake-ups), by perf.
    local stat="$work/stat"
    [ -n "${STAT:-}" ] && perf stat -e syscalls:sys_enter_futex -p "$pid" -o "$stat" -- sleep "$secs" &
    local line; line=$(KEY="$key" QUERIES="$shared/queries.train.jsonl" MODE=$mode K=10 COLLECTION=scifact \
      wrk -t2 -c32 -d"${secs}s" -s "$root/bench/query.lua" "$url" | grep '^{')
    local ticks=$(($(cpu_ticks "$pid") - before)) requests; requests=$(sed 's/.*"requests":\([0-9]*\).*/\1/' <<< "$line")
    local futex=""
    if [ -n "${STAT:-}" ]; then
      wait $!
      futex=",\"server_futex_calls_per_request\":$(awk -v n="$requests" '/sys_enter_futex/ {gsub(",", "", $1); printf "%.2f", $1 / n}' "$stat")"
    fi
    echo "$label ${line%\}},\"server_cpu_us_per_request\":$((ticks * 1000000 / $(getconf CLK_TCK) / requests))$futex}"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$work"
}
redis_port=$((20000 + $$ % 20000))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > /dev/null &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
sleep 0.5
for _ in $(seq "$rounds"); do
  for mode in ${MODES:-off auth shared}; do
    case "$mode" in
      off) run off ;;
      auth) run auth --auth ;;
      shared) run shared --auth --redis "redis://127.0.0.1:$redis_port" ;;
    esac
  done
done
