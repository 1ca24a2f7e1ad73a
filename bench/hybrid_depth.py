"""Hybrid fusion window (the query's "depth") against quality, through HTTP.

For each depth, runs SciFact's judged training claims as k = 10 hybrid queries (no
grouping, cache bypassed) and prints chunk-list nDCG@10 (documents deduplicated in rank
order) and the top-10 overlap with depth 60 (the old default).
Usage: python3 bench/hybrid_depth.py URL [DATA_DIR]   (bench/hybrid_depth.sh starts a server)
"""
import collections
import json
import math
import sys
import urllib.request

url = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/scifact"
qrels = collections.defaultdict(dict)
with open(f"{data}/qrels/train.tsv") as f:
    for i, line in enumerate(f):
        p = line.split()
        if i == 0 and not p[-1].isdigit():
            continue  # header
        qrels[p[0]][p[1]] = int(p[2])
with open(f"{data}/queries.train.jsonl") as f:
    queries = [q for q in map(json.loads, f) if q["_id"] in qrels]


def query(text, depth):
    body = {"query": text, "k": 10, "mode": "hybrid", "cache": "bypass", "depth": depth}
    req = urllib.request.Request(url + "/v1/collections/scifact/query", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["results"]


def ndcg10(doc_ids, rel):
    ranked = list(dict.fromkeys(doc_ids))[:10]
    dcg = sum(rel.get(d, 0) / math.log2(r + 2) for r, d in enumerate(ranked))
    ideal = sum(g / math.log2(r + 2) for r, g in enumerate(sorted(rel.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


base = {}
for depth in [60, 10, 20, 30, 40, 100]:
    total = overlap = 0.0
    for q in queries:
        res = query(q["text"], depth)
        keys = {(r["id"], r["chunk"]) for r in res}
        base.setdefault(q["_id"], keys)
        overlap += len(keys & base[q["_id"]]) / max(1, len(base[q["_id"]]))
        total += ndcg10([r["id"] for r in res], qrels[q["_id"]])
    print(json.dumps({"depth": depth, "ndcg@10": round(total / len(queries), 4),
                      "overlap_with_depth_60": round(overlap / len(queries), 3)}), flush=True)
