#!/usr/bin/env bash
# Two nodes sharing one key's rate limit through Redis: a 2-node cluster (scripts/cluster,
# --auth, --redis), one key with a limit of RPM requests a minute, and clients hammering
# both nodes at once for SECS seconds. A token bucket admits at most its capacity plus what
# refills during the run: RPM + RPM * SECS / 60; the figure printed is how many the two
# nodes admitted together against that bound (and against what two unshared nodes would
# admit, twice it).
# Usage: bench/shared_limits_bench.sh [rpm, default 1200] [seconds, default 20]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rpm=${1:-1200} secs=${2:-20}
export CONTEXTD_ADMIN_KEY=bench-admin-key-0123456789
export CONTEXTD_SERVE_ARGS=--auth
export BASE_PORT=${BASE_PORT:-18081}
trap '"$root/scripts/cluster" down > /dev/null' EXIT
"$root/scripts/cluster" up 2 > /dev/null
n1="http://127.0.0.1:$BASE_PORT" n2="http://127.0.0.1:$((BASE_PORT + 1))"
A=(-H "Authorization: Bearer $CONTEXTD_ADMIN_KEY")
curl -sf "${A[@]}" -X POST "$n1/v1/admin/tenants" -d '{"id":"bench"}' > /dev/null
key=$(curl -sf "${A[@]}" -X POST "$n1/v1/admin/tenants/bench/keys" -d "{\"role\":\"reader\",\"limits\":{\"rpm\":$rpm}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# The key reaches node 2 through the log.
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$n2/v1/collections")" != 401 ] && break
  sleep 0.05
done
/usr/bin/python3 - "$key" "$secs" "$rpm" "$n1" "$n2" <<'PY'
import http.client, json, sys, threading, time, urllib.parse
key, secs, rpm, urls = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
counts = {u: {} for u in urls}
lock = threading.Lock()
start = time.monotonic()
def client(url):
    p = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(p.hostname, p.port)
    while time.monotonic() - start < secs:
        conn.request("GET", "/v1/collections", headers={"Authorization": "Bearer " + key})
        r = conn.getresponse(); r.read()
        with lock:
            counts[url][r.status] = counts[url].get(r.status, 0) + 1
threads = [threading.Thread(target=client, args=(u,)) for u in urls for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
admitted = sum(c.get(200, 0) for c in counts.values())
bound = rpm + rpm * secs / 60
print(json.dumps({"rpm": rpm, "seconds": secs, "per_node": {u: c for u, c in counts.items()},
                  "admitted": admitted, "bound": bound, "unshared_bound": 2 * bound,
                  "admitted_over_bound": round(admitted / bound, 4)}))
PY
