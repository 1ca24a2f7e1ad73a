#!/usr/bin/env bash
# Snapshots (issue 21): SciFact (GloVe) ingested into contextd with scripts/run's defaults,
# then a snapshot taken, downloaded and restored into a second server. Prints the ingest,
# snapshot, download and restore times, the file's size, and how alike the copy answers
# SciFact's (training) queries, k=10, in each mode.
# Usage: bench/snapshot.sh
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
now() { date +%s.%N; }
start_contextd
src=$url
t0=$(now); ingest_scifact; t1=$(now)
snap=$(curl -sf -X POST "$src/v1/collections/scifact/snapshots"); t2=$(now)
name=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['name'])" "$snap")
curl -sf -o "$work/scifact.snap" "$src/v1/collections/scifact/snapshots/$name"; t3=$(now)
"$bin/contextd" serve --port 0 --data "$work/data2" --models "$root/models" > "$work/ctx2.out" 2> "$work/ctx2.log" &
bench_pids+=("$!")
dst=$(wait_url "$work/ctx2.out"); dst=${dst%/}
t4=$(now)
curl -sf -X POST "$dst/v1/collections/scifact/snapshots/restore" --data-binary "@$work/scifact.snap" > /dev/null
t5=$(now)
python3 - "$src" "$dst" "$root/../shared/data/scifact/queries.train.jsonl" "$snap" <<PY
import json, sys, urllib.request
src, dst, queries, snap = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
def post(base, q, mode):
    body = json.dumps({"query": q, "k": 10, "mode": mode, "cache": "bypass"}).encode()
    req = urllib.request.Request(base + "/v1/collections/scifact/query", body, {"Content-Type": "application/json"})
    return [(r["id"], r["chunk"]) for r in json.load(urllib.request.urlopen(req))["results"]]
qs = [json.loads(l)["text"] for l in open(queries)]
out = {"documents": snap["documents"], "chunks": snap["chunks"], "size_mb": round(snap["size_bytes"] / 2**20, 1),
       "ingest_s": round($t1 - $t0, 2), "snapshot_s": round($t2 - $t1, 2), "download_s": round($t3 - $t2, 2),
       "restore_s": round($t5 - $t4, 2), "queries": len(qs)}
# Keyword search is exact: the same top 10 (as a set: equal scores may order differently).
# Vector and hybrid walk graphs rebuilt on the copy: the mean overlap of the top 10s.
for mode in ("keyword", "vector", "hybrid"):
    pairs = [(post(src, q, mode), post(dst, q, mode)) for q in qs]
    out[mode + "_same_set"] = sum(set(a) == set(b) for a, b in pairs)
    out[mode + "_overlap_at_10"] = round(sum(len(set(a) & set(b)) / max(len(a), 1) for a, b in pairs) / len(pairs), 4)
print(json.dumps(out))
PY
