#!/usr/bin/env bash
# Hybrid quality against the fusion window: SciFact (glove) in a fresh server, then
# bench/hybrid_depth.py over the 809 judged training claims.
set -euo pipefail
. "$(dirname "$0")/serve_lib.sh"
shared="$root/../shared/data/scifact"
start_contextd
ingest_scifact
python3 "$root/bench/hybrid_depth.py" "$url" "$shared"
