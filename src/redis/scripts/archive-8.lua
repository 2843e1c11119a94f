--[[
  Archives a sale: checks, in the same step as it deletes, that the sale sells no more and owes
  nothing, then deletes every key of it. The checks were reads before the deletion; a resume, a
  stock addition or a purchase between them and the deletion lost the orders it made (issue 30:
  50 acknowledged orders gone in 2 of 11 races). Nothing can come between them here. The caller
  has already written the sale's archived record and checked the database (audit.ts); it takes the
  record back if this refuses.

  Refused while: the sale is open (not paused, inside its start and end, not sold out), recovering
  lost orders, holds a reserved order (it could still be paid), or holds an order event the order
  writers have not acknowledged (they acknowledge after their commit: an acknowledged event is in
  the database).

  Input:
    KEYS[1] sale hash: ticket_total_nums, ticket_sold_nums, ticket_paid_nums, paused, starts_at,
            ends_at, recovering
    KEYS[2] buyers hash
    KEYS[3] orders stream (its consumer group ARGV[1] is the order writers')
    KEYS[4] order states hash
    KEYS[5] holds hash
    KEYS[6] waiting room places hash
    KEYS[7] pre-queue sorted set
    KEYS[8] admission steps list
    ARGV[1] the order writers' consumer group

  Output:
    { 1, 0 }    archived: every key deleted
    { -2, 0 }   no such sale
    { -3, 0 }   refused: recovering lost orders
    { -4, 0 }   refused: open
    { -5, n }   refused: n orders reserved
    { -6, n }   refused: n order events not yet written (at least n)
]]
--- @include "includes/stream-ids"
--- @include "includes/clock"
--- @include "includes/record"

-- Events on the orders stream (KEYS[3]) the group has not acknowledged: pending, or never delivered.
local function unwritten(group)
  if redis.call('EXISTS', KEYS[3]) == 0 then
    return 0
  end
  local info = record(redis.call('XINFO', 'STREAM', KEYS[3]))
  if info['length'] == 0 then
    return 0
  end
  for _, reply in ipairs(redis.call('XINFO', 'GROUPS', KEYS[3])) do
    local g = record(reply)
    if g['name'] == group then
      if g['pending'] > 0 then
        return g['pending']
      end
      if older(g['last-delivered-id'], info['last-generated-id']) then
        return math.max(1, tonumber(g['lag']) or 1)
      end
      return 0
    end
  end
  -- No group yet: no writer ever read the stream.
  return info['length']
end

local sale = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'ticket_sold_nums', 'ticket_paid_nums', 'paused', 'starts_at',
  'ends_at', 'recovering')
local total = tonumber(sale[1])
if not total then
  return { -2, 0 }
end
if sale[7] then
  return { -3, 0 }
end
local sold, paid, now = tonumber(sale[2]) or 0, tonumber(sale[3]) or 0, nowMs()
local started = not sale[5] or now >= tonumber(sale[5])
local ended = sale[6] and now >= tonumber(sale[6])
if sale[4] ~= '1' and started and not ended and sold < total then
  return { -4, 0 }
end
if sold > paid then
  return { -5, sold - paid }
end
local behind = unwritten(ARGV[1])
if behind > 0 then
  return { -6, behind }
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return { 1, 0 }
