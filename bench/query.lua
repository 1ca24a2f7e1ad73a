-- wrk script: POSTs BEIR queries (QUERIES=path to queries.jsonl) to a collection's query
-- endpoint, cycling through them. MODE (keyword|vector|hybrid), K and COLLECTION choose the
-- request. The query text is copied still JSON-escaped, so each body is valid JSON.
local bodies = {}
local mode = os.getenv("MODE") or "hybrid"
local k = os.getenv("K") or "10"
local collection = os.getenv("COLLECTION") or "scifact"
-- The collection's query cache would answer every repeat of the cycled queries; the
-- search itself is measured unless CACHE=default.
local cache = os.getenv("CACHE") or "bypass"
local path = "/v1/collections/" .. collection .. "/query"
-- DEPTH: hybrid's candidates per list (the server's default when unset).
local depth = os.getenv("DEPTH")
local extra = depth and (',"depth":' .. depth) or ""
-- KEY: an API key, sent as Authorization: Bearer (a server started with --auth).
local headers = { ["Content-Type"] = "application/json" }
if os.getenv("KEY") then headers["Authorization"] = "Bearer " .. os.getenv("KEY") end

for line in io.lines(os.getenv("QUERIES")) do
  local text = line:match('"text":%s*"(.-)",%s*"metadata"')
  if text then
    bodies[#bodies + 1] = '{"query":"' .. text .. '","k":' .. k .. ',"mode":"' .. mode .. '","cache":"' .. cache .. '"' .. extra .. '}'
  end
end

local i = 0
function setup(thread)
  thread:set("offset", math.random(#bodies))
end

request = function()
  i = i + 1
  local body = bodies[(i + (offset or 0)) % #bodies + 1]
  return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"mode":"%s","requests":%d,"errors":%d,"qps":%.0f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    mode, summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
      summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
