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
    the number of outages the sale keeps after the call (0 when there is no such sale)
]]
--- @include "includes/deadlines"
--- @include "includes/clock"

local sale = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'outages')
if not sale[1] then
  return 0
end
return #recordOutage(sale[2], ARGV[1], nowMs())
