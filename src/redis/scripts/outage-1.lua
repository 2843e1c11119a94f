--[[
  Records a Redis outage a node saw in a sale, so the payment deadlines of its reserved orders
  move by the time their buyers could not pay (includes/deadlines.lua). The supervisor calls it
  for every sale as soon as Redis answers again, before its reaper runs; a payment also carries
  its node's last outage (settle-4.lua), in case it comes first. Recording the same outage again
  changes nothing.

  Input:
    KEYS[1] sale hash: outages ("id,start,end;...")
    ARGV[1] the outage, "id:msAgoStart:msAgoEnd" (how long ago it began and ended, by the
            caller's clock, just before this call)

  Output:
    the number of outages the sale keeps after the call
]]
--- @include "includes/deadlines"

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return #recordOutage(redis.call('HGET', KEYS[1], 'outages'), ARGV[1], now)
