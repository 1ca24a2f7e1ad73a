-- wrk script: POSTs one fixed JSON body (env BODY) and prints a JSON line of throughput and
-- latency percentiles labelled with env LABEL and CONNS. Used by the cache-hit benchmarks.
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format(
    '{"label":"%s","connections":%s,"requests":%d,"errors":%d,"rps":%.0f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    os.getenv("LABEL") or "", os.getenv("CONNS") or "?", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
