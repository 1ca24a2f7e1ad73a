# Sourced by the HTTP benchmark scripts. Sets root (the repo), bin (build/bin) and work (a
# temporary directory removed on exit, with every process in bench_pids killed), and
# defines:
#   wait_url FILE            the URL a process printed to FILE as "listening on URL"
#   start_contextd [FLAGS]   contextd serve on a free port with data in $work; sets url
#   ingest_scifact           SciFact's corpus into collection "scifact" (glove) at $url
root=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
bin="$root/build/bin"
[ -x "$bin/contextd" ] || { echo "build first: scripts/build" >&2; exit 1; }
work=$(mktemp -d)
bench_pids=()
bench_cleanup() {
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap bench_cleanup EXIT

wait_url() {
  for _ in $(seq 100); do grep -q "listening on" "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$1" | head -1
}

start_contextd() {
  "$bin/contextd" serve --port 0 --data "$work/data" --models "$root/models" "$@" \
    > "$work/ctx.out" 2> "$work/ctx.log" &
  bench_pids+=("$!")
  url=$(wait_url "$work/ctx.out")
  url=${url%/}
}

ingest_scifact() {
  curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
  "$bin/contextd" ingest --url "$url" --collection scifact "$root/../shared/data/scifact/corpus.jsonl" > /dev/null
}
