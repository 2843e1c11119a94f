--[[
  Lets a sale sell again once its lost orders are restored (restore-4.lua): raises last_id to
  at least the newest order id the caller knows (so purchase-N.lua no longer sees Redis as
  behind) and clears the recovering mark.

  Input:
    KEYS[1] sale hash: last_id, recovering
    ARGV[1] the newest order or event id known anywhere (a node's memory, the database)

  Output:
    the sale's last_id after the call; "" when there is no such sale (none, or archived)
]]
--- @include "includes/stream-ids"

-- A sale deleted meanwhile (archived) must not come back as a hash of these two fields.
if not redis.call('HGET', KEYS[1], 'ticket_total_nums') then
  return ''
end
local last = redis.call('HGET', KEYS[1], 'last_id') or '0-0'
if older(last, ARGV[1]) then
  last = ARGV[1]
  redis.call('HSET', KEYS[1], 'last_id', last)
end
redis.call('HDEL', KEYS[1], 'recovering')
return last
