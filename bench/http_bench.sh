#!/usr/bin/env bash
# The issue-2 benchmarks, side by side with nginx in one run:
#   1. GET /healthz vs nginx serving a static file (wrk -t2 -c100)
#   2. durable ingest of SciFact (5,183 abstracts) through the HTTP API, glove embedder
#   3. keyword and hybrid queries from SciFact's training queries, 32 keep-alive clients
# Usage: bench/http_bench.sh [seconds per wrk run, default 10]
set -euo pipefail
secs=${1:-10}
. "$(dirname "$0")/serve_lib.sh"
shared="$root/../shared/data/scifact"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- contextd
start_contextd

# --- nginx, two workers (one per core), a static file the size of contextd's healthz reply
nginx_port=$(free_port)
mkdir -p "$work/www"
printf '{"status":"ok"}' > "$work/www/healthz"
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$nginx_port; root $work/www; default_type application/json; }
}
CONF
mkdir -p "$work/tmp"
nginx -c "$work/nginx.conf"
for _ in $(seq 50); do [ -f "$work/nginx.pid" ] && break; sleep 0.1; done
bench_pids+=("$(cat "$work/nginx.pid")")

echo "== 1. GET /healthz vs nginx static file: wrk -t2 -c100 -d${secs}s"
nginx_rps=$(wrk -t2 -c100 -d"${secs}s" "http://127.0.0.1:$nginx_port/healthz" | awk '/Requests\/sec/ {print $2}')
ctx_rps=$(wrk -t2 -c100 -d"${secs}s" "$url/healthz" | awk '/Requests\/sec/ {print $2}')
echo "{\"nginx_rps\":$nginx_rps,\"contextd_rps\":$ctx_rps,\"ratio\":$(python3 -c "print(round($ctx_rps/$nginx_rps,3))")}"

echo "== 2. durable ingest of SciFact through HTTP (glove)"
curl -sf -X PUT "$url/v1/collections/scifact" -d '{"embedder":"glove"}' > /dev/null
"$bin/contextd" ingest --url "$url" --collection scifact "$shared/corpus.jsonl"

echo "== 3. SciFact training queries, 32 keep-alive clients: wrk -t2 -c32 -d${secs}s"
for mode in keyword hybrid vector; do
  QUERIES="$shared/queries.train.jsonl" MODE=$mode K=10 COLLECTION=scifact \
    wrk -t2 -c32 -d"${secs}s" -s "$root/bench/query.lua" "$url" | grep '^{'
done
