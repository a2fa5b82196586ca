-- wrk script: send pre-signed raw requests from a file, each once, in order.
-- Each wrk thread takes every n-th request (n = number of threads), so no request is
-- sent twice. When a thread runs out it starts over (idempotent replays), and says so.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2] or "1")
  local f = assert(io.open(path, "rb"))
  requests = {}
  local index = 0
  while true do
    local line = f:read("*l")
    if not line then break end
    local n = tonumber(line)
    local raw = f:read(n)
    if index % nthreads == id then
      requests[#requests + 1] = raw
    end
    index = index + 1
  end
  f:close()
  position = 0
  wrapped = 0
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    wrapped = wrapped + 1
  end
  return requests[position]
end

function done(summary, latency, requests)
  local replays = 0
  for _, t in ipairs(threads) do
    replays = replays + (t:get("wrapped") or 0)
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "replays": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, replays))
end
