--[[
  The opening draw of a sale's waiting room: once starts_at has passed, gives the users of the
  pre-queue positions 1..P in the order of their random scores (a uniform shuffle), once. Users
  who join from the opening on are already placed behind them (join-5.lua), and the pre-queue
  no longer grows.

  A million joiners took one script 2.5 s, during which Redis answered nobody (the buyers of every
  other sale got 503s). So the draw is done in slices of at most ARGV[1] users per call, a cursor
  in the sale hash remembering where the last slice ended; the caller calls again until done.

  Input:
    KEYS[1] sale hash: starts_at, queue_drawn ("1" once drawn), queue_drawn_to (users placed so
            far), last_id, recovering (see includes/guard.lua)
    KEYS[2] places hash: user -> position ("pre" until placed here)
    KEYS[3] pre-queue sorted set: user, scored by a random number
    ARGV[1] most users to place in this call
    ARGV[2] the newest order id of this sale the caller has seen ("0-0": none)

  Output:
    P >= 0   the pre-queue is drawn (now, or before); P is its size
    -1       not yet: starts_at is still ahead
    -2       this call placed a slice; call again for the next
    -3       nothing done: the sale is recovering lost orders
    -4       no such sale (none, or archived)
]]
--- @include "includes/stream-ids"
--- @include "includes/guard"
--- @include "includes/clock"

local sale = redis.call('HMGET', KEYS[1], 'starts_at', 'queue_drawn', 'queue_drawn_to', 'last_id', 'recovering', 'ticket_total_nums')
if not sale[6] then
  return -4
end
if sale[2] == '1' then
  return redis.call('ZCARD', KEYS[3])
end
local now = nowMs()
if sale[1] and now < tonumber(sale[1]) then
  return -1
end
if stopped(sale[4], sale[5], ARGV[2]) then
  return -3
end
local from = tonumber(sale[3]) or 0
local users = redis.call('ZRANGE', KEYS[3], from, from + tonumber(ARGV[1]) - 1)
-- HSET in chunks: unpack has a stack limit.
local chunk = {}
for i, user in ipairs(users) do
  chunk[#chunk + 1] = user
  chunk[#chunk + 1] = from + i
  if #chunk >= 1000 then
    redis.call('HSET', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then
  redis.call('HSET', KEYS[2], unpack(chunk))
end
local placed = from + #users
local size = redis.call('ZCARD', KEYS[3])
if placed < size then
  redis.call('HSET', KEYS[1], 'queue_drawn_to', placed)
  return -2
end
redis.call('HSET', KEYS[1], 'queue_drawn', '1', 'queue_drawn_to', placed)
return size
