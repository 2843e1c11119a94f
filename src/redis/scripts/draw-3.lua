--[[
  The opening draw of a sale's waiting room: once starts_at has passed, gives the users of the
  pre-queue positions 1..P in the order of their random scores (a uniform shuffle), once. Users
  who join from the opening on are already placed behind them (join-3.lua).

  Input:
    KEYS[1] sale hash: starts_at, queue_drawn ("1" once drawn)
    KEYS[2] places hash: user -> position ("pre" until this runs)
    KEYS[3] pre-queue sorted set: user, scored by a random number

  Output:
    P >= 0   the pre-queue was drawn now, or before (P: its size)
    -1       not yet: starts_at is still ahead
]]
local sale = redis.call('HMGET', KEYS[1], 'starts_at', 'queue_drawn')
if sale[2] == '1' then
  return redis.call('ZCARD', KEYS[3])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if sale[1] and now < tonumber(sale[1]) then
  return -1
end
local users = redis.call('ZRANGE', KEYS[3], 0, -1)
-- HSET in chunks: unpack has a stack limit.
local chunk = {}
for i, user in ipairs(users) do
  chunk[#chunk + 1] = user
  chunk[#chunk + 1] = i
  if #chunk >= 1000 then
    redis.call('HSET', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then
  redis.call('HSET', KEYS[2], unpack(chunk))
end
redis.call('HSET', KEYS[1], 'queue_drawn', '1')
return #users
