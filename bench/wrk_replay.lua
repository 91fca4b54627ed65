-- wrk script: replays pre-built requests read from a file, one per line, in order.
-- Arguments (after "--"): requests file, method (POST or GET), path for POST, key file.
-- POST lines are JSON bodies sent to the path; GET lines are paths with query strings.
-- done() prints one "WRKJSON {...}" line that bench/load.py parses.

local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

local reqs = {}
local i = 0

function init(args)
  local file, method, path, key_file = args[1], args[2], args[3], args[4]
  local kf = assert(io.open(key_file, "r"))
  local key = kf:read("*l")
  kf:close()
  local headers = { ["Authorization"] = "Bearer " .. key }
  if method == "POST" then
    headers["Content-Type"] = "application/json"
  end
  for line in io.lines(file) do
    if #line > 0 then
      if method == "POST" then
        reqs[#reqs + 1] = wrk.format("POST", path, headers, line)
      else
        reqs[#reqs + 1] = wrk.format("GET", line, headers)
      end
    end
  end
  -- Threads start at different places of the same sequence.
  i = ((thread_id or 0) * 7919) % #reqs
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
