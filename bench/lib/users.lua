--[[
  wrk script: every request buys as a new user, and the run stops after a fixed number of answers.

  Input (environment):
    SPIKE_USER_PREFIX  users are <prefix>1, <prefix>2, ...; give each run its own prefix
    SPIKE_REQUESTS     stop after this many answers (0 = run for wrk's -d)
    SPIKE_ANONYMOUS    1 = no user parameter (the sold-out path of a finished sale)
    SPIKE_SALES        N > 0: request i buys of sale bs<i mod N> (sales made by the bench)

  Output:
    prints LIMIT when SPIKE_REQUESTS answers arrived (wrk itself only stops at -d, so the
    caller sends SIGINT, which makes wrk report the real duration), then one JSON line:
    {"requests":N,"duration_us":N,"non2xx":N,"errors":N,"p50_us":N,"p99_us":N}
]]
local prefix = os.getenv("SPIKE_USER_PREFIX") or "w"
local limit = tonumber(os.getenv("SPIKE_REQUESTS") or "0") or 0
local anonymous = os.getenv("SPIKE_ANONYMOUS") == "1"
local sales = tonumber(os.getenv("SPIKE_SALES") or "0") or 0
local sent, answered = 0, 0
-- With -t2 each thread runs its own copy of this script: setup (in the main thread) gives each
-- a tag of its own, so their users never collide.
thread_tag = ""
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("thread_tag", threads .. "-")
end

request = function()
  sent = sent + 1
  if anonymous then
    return wrk.format("GET", "/buy/ticket")
  end
  if sales > 0 then
    return wrk.format("GET", "/buy/ticket?sale=bs" .. (sent % sales) .. "&user=" .. prefix .. thread_tag .. sent)
  end
  return wrk.format("GET", "/buy/ticket?user=" .. prefix .. thread_tag .. sent)
end

response = function(status, headers, body)
  answered = answered + 1
  if limit > 0 and answered == limit then
    io.write("LIMIT\n")
    io.flush()
    wrk.thread:stop()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
