--[[
  Adds tickets to a sale, refusing in the same step any addition that would take its total past
  what a node can count (ARGV[2]): two admins adding at once once passed the cap when the check
  was a read before the write. Like every change to a sale, refused while the sale is recovering
  lost orders (includes/guard.lua).

  Input:
    KEYS[1] sale hash: ticket_total_nums, last_id, recovering
    ARGV[1] tickets to add (at least 1)
    ARGV[2] the largest total a sale may have
    ARGV[3] the newest order id of this sale the caller has seen ("0-0": none)

  Output:
    { 1, total }     added: the new total
    { -1, total }    refused: the total would pass ARGV[2] (total as it is)
    { -2, 0 }        no such sale
    { -3, total }    refused: the sale is recovering lost orders
]]
--- @include "includes/stream-ids"
--- @include "includes/guard"

local sale = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'last_id', 'recovering')
local total = tonumber(sale[1])
if not total then
  return { -2, 0 }
end
if stopped(sale[2], sale[3], ARGV[3]) then
  return { -3, total }
end
if total + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return { -1, total }
end
return { 1, redis.call('HINCRBY', KEYS[1], 'ticket_total_nums', ARGV[1]) }
