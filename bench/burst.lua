-- wrk script for bench/guardian_burst.py: every request a different guardian's link.
-- The links come one per line from the file named by BURST_PATHS; wrk thread k of n
-- takes lines k, k+n, k+2n, ... so no two threads send the same link. A thread that
-- runs out starts its lines again (the bench prints when that happened).
-- done() prints one line, "BURST {json}", that the bench reads.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(args[1])
  -- As every guardian's phone does, one request per connection; "keep-alive" reuses them.
  request_headers = args[2] == "keep-alive" and {} or {["Connection"] = "close"}
  paths, statuses, index = {}, {}, 0
  local n = 0
  for line in io.lines(os.getenv("BURST_PATHS")) do
    if n % count == id then paths[#paths + 1] = line end
    n = n + 1
  end
end

function request()
  index = index + 1
  if index > #paths then index = 1 end
  return wrk.format("GET", paths[index], request_headers)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%s": %d', code, count)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BURST {"requests": %d, "us": %d, "bytes": %d, "p50": %d, "p95": %d, "p99": %d, "max": %d,'
    .. ' "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "statuses": [{%s}]}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, table.concat(counts, "}, {")))
end
