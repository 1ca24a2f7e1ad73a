#!/usr/bin/env bash
# Shutdown on time (issue 23): SIGTERM while a large upsert is in flight. contextd with
# scripts/run's defaults (10 s grace) and a GloVe collection; a SIZE_MB upsert (SciFact
# text) is sent, SIGTERM follows DELAY seconds later. Prints how long the process took to
# exit after SIGTERM, what the client got, and, after a restart, whether the document is
# there: an acknowledged write must be, and one answered with an error (or no answer)
# must not be half there. Usage: bench/shutdown.sh [SIZE_MB, default 30] [DELAY s, default 1]
set -euo pipefail
source "$(dirname "$0")/serve_lib.sh"
size=${1:-30} delay=${2:-1}
python3 - "$work" "$size" "$root/../shared/data/scifact/corpus.jsonl" <<'PY'
import json, sys
work, size, corpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = [json.loads(l)["text"] for l in open(corpus)]
out, n = [], 0
while n < size * 1_000_000:
    for t in texts:
        out.append(t); n += len(t) + 1
        if n >= size * 1_000_000: break
json.dump({"documents": [{"id": "big", "text": " ".join(out)}]}, open(f"{work}/big.json", "w"))
PY
start_contextd
pid=${bench_pids[-1]}
curl -sf -X PUT "$url/v1/collections/docs" -d '{"embedder":"glove"}' > /dev/null
( curl -s -o "$work/reply" -w "%{http_code}" "$url/v1/collections/docs/documents" --data-binary "@$work/big.json" \
    > "$work/code" 2>/dev/null || echo "no reply" > "$work/code" ) &
client=$!
sleep "$delay"
t0=$(date +%s.%N)
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
t1=$(date +%s.%N)
wait "$client" || true
code=$(cat "$work/code")
"$bin/contextd" serve --port 0 --data "$work/data" --models "$root/models" > "$work/ctx2.out" 2> "$work/ctx2.log" &
bench_pids+=("$!")
url=$(wait_url "$work/ctx2.out"); url=${url%/}
doc=$(curl -s -o /dev/null -w "%{http_code}" "$url/v1/collections/docs/documents/big")
python3 -c "import json; print(json.dumps({'size_mb': $size, 'sigterm_after_s': $delay, 'exit_after_sigterm_s': round($t1 - $t0, 2), 'client_status': '$code', 'document_after_restart': $doc}))"
