#!/usr/bin/env bash
# First queries after the page cache is dropped: a glove collection, the kernel's page
# cache emptied (needs root: /proc/sys/vm/drop_caches), then 300 distinct SciFact claims
# as vector queries, one at a time. Shows whether a query can wait on a page of the word
# vectors coming from disk.
# Usage: bench/cold_queries.sh [contextd binary, default build/bin/contextd]
set -euo pipefail
. "$(dirname "$0")/serve_lib.sh"
[ -n "${1:-}" ] && bin=$(cd "$(dirname "$1")" && pwd)
start_contextd
curl -sf -X PUT "$url/v1/collections/c" -d '{"embedder":"glove"}' > /dev/null
curl -sf -X POST "$url/v1/collections/c/documents" \
  -d '{"documents":[{"id":"a","text":"Kittens and puppies make wonderful pets."}]}' > /dev/null
sync
echo 3 > /proc/sys/vm/drop_caches
python3 - "$url" "$root/../shared/data/scifact/queries.train.jsonl" <<'PY'
import http.client, json, sys, time, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
conn = http.client.HTTPConnection(url.hostname, url.port)
claims = [json.loads(line)["text"] for line in open(sys.argv[2])][:300]
ms = []
for claim in claims:
    body = json.dumps({"query": claim, "mode": "vector", "cache": "bypass"})
    t = time.perf_counter()
    conn.request("POST", "/v1/collections/c/query", body)
    conn.getresponse().read()
    ms.append((time.perf_counter() - t) * 1000)
ms.sort()
print(json.dumps({"queries": len(ms), "mean_ms": round(sum(ms) / len(ms), 3),
                  "p99_ms": round(ms[int(0.99 * len(ms))], 3), "max_ms": round(ms[-1], 3)}))
PY
