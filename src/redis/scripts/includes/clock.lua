-- Now on Redis' clock, in ms: every script that judges a time (a deadline, a start, an end) reads it here.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
