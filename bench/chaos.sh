#!/usr/bin/env bash
# Seeded kills and restarts of contextd nodes and nats-servers under write and read load,
# with a ledger of acknowledged writes checked on every node afterwards (see chaos.py).
# Usage: bench/chaos.sh SEED MINUTES
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: bench/chaos.sh SEED MINUTES" >&2; exit 2; }
"$root/scripts/build" > /dev/null
exec python3 "$root/bench/chaos.py" "$1" "$2"
