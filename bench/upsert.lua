-- wrk script: concurrent small durable writes. Each request upserts one short document
-- (ids cycle through IDS, default 5000, so later requests replace earlier ones) into
-- COLLECTION; every reply waits for its synced write, so this measures how well
-- concurrent writers share WAL syncs (group commit).
local collection = os.getenv("COLLECTION") or "scifact"
local ids = tonumber(os.getenv("IDS") or "5000")
local path = "/v1/collections/" .. collection .. "/documents"
local i = 0
function setup(thread)
  thread:set("offset", math.random(ids))
end

request = function()
  i = i + 1
  local n = (i + (offset or 0)) % ids
  local body = '{"documents":[{"id":"w' .. n .. '","text":"write ' .. i ..
    ' about cells, proteins and the immune response in mice"}]}'
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"mode":"upsert","requests":%d,"errors":%d,"qps":%.0f,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
      summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
