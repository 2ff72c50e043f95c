-- wrk script: replay pre-signed raw requests from a length-prefixed file (`<len>\n<bytes>` ...), in order,
-- wrapping around at the end; count 202 answers apart from the rest. Used by bench/common.py run_wrk.
local reqs = {}
local n = 0
local i = 0
accepted = 0
other = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  local size = #data
  while pos <= size do
    local nl = data:find("\n", pos, true)
    local len = tonumber(data:sub(pos, nl - 1))
    n = n + 1
    reqs[n] = data:sub(nl + 1, nl + len)
    pos = nl + len + 1
  end
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local acc, oth = 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    oth = oth + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"accepted":%d,"other":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, acc, oth, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
