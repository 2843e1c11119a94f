--[[
  Puts orders that Redis lost back into a sale, from the database's copy, atomically and
  idempotently: running it twice changes nothing the second time. Redis can lose acknowledged
  writes (a crash under appendfsync everysec, a failover to a lagging replica, a restore from
  a backup); every order the order writer had copied into the database is then still known,
  and must not be sold a second time.

  For each order given:
  - Redis does not know it: its state goes into the states hash (purchase-N.lua's `created`
    entry cannot be re-added: stream ids only grow), a live one (reserved, paid) counts in
    ticket_sold_nums again (paid also in ticket_paid_nums) and becomes its user's live order,
    and a `restored` event goes on the stream, where the reaper and the audit find it.
  - Redis knows it as reserved and the database as paid, cancelled or expired (the event was
    lost): the order moves on, with the same effects as settle-4.lua, and that event again.
  - Otherwise Redis is as new as the database, or newer: nothing changes.

  Input:
    KEYS[1] sale hash: ticket_sold_nums, ticket_paid_nums, ticket_cancelled_nums,
            ticket_expired_nums, last_id (the newest stream id)
    KEYS[2] buyers hash: user id -> their live order id
    KEYS[3] orders stream: gets {event=restored, order, user, state, port, pay_by, updated} (all
            the order writer needs to write the row, should the database lack it) or
            {event=<state>, order, user}
    KEYS[4] order states hash: order id -> "state|payBy|port|updatedAt|user"
    ARGV[6i+1..6i+6] one order each: id, state (reserved, paid, cancelled or expired), user
            ("" anonymous), port, payBy in ms (0: no deadline), updatedAt in ms

  Output:
    { restored, advanced, conflicts }: orders put back; orders moved from reserved to the
    database's later state; named users who hold another live order than the restored one
    (the restored order stays their live order; the audit shows the other)
    { -2, 0, 0 }: no such sale (none, or archived): nothing written
]]
--- @include "includes/record"
--- @include "includes/orders"

if not redis.call('HGET', KEYS[1], 'ticket_total_nums') then
  return { -2, 0, 0 }
end

local live = { reserved = true, paid = true }
local restored, advanced, conflicts = 0, 0, 0

for i = 1, #ARGV, 6 do
  local id, state, user, port, payBy, updated = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local o = load(id)
  local saved = state .. '|' .. payBy .. '|' .. port .. '|' .. updated .. '|' .. user
  if not o then
    redis.call('HSET', KEYS[4], id, saved)
    if live[state] then
      redis.call('HINCRBY', KEYS[1], 'ticket_sold_nums', 1)
      if user ~= '' then
        local holds = redis.call('HGET', KEYS[2], user)
        if holds and holds ~= id then
          conflicts = conflicts + 1
        end
        redis.call('HSET', KEYS[2], user, id)
      end
    end
    if not live[state] or state == 'paid' then
      -- The count of its final state (paid, cancelled, expired) was lost with it.
      redis.call('HINCRBY', KEYS[1], 'ticket_' .. state .. '_nums', 1)
    end
    local at = redis.call('XADD', KEYS[3], '*', 'event', 'restored', 'order', id, 'user', user, 'state', state, 'port', port,
      'pay_by', payBy, 'updated', updated)
    redis.call('HSET', KEYS[1], 'last_id', at)
    restored = restored + 1
  elseif o.state == 'reserved' and state ~= 'reserved' then
    redis.call('HSET', KEYS[4], id, saved)
    if state == 'paid' then
      redis.call('HINCRBY', KEYS[1], 'ticket_paid_nums', 1)
    else
      redis.call('HINCRBY', KEYS[1], 'ticket_sold_nums', -1)
      redis.call('HINCRBY', KEYS[1], 'ticket_' .. state .. '_nums', 1)
      if user ~= '' and redis.call('HGET', KEYS[2], user) == id then
        redis.call('HDEL', KEYS[2], user)
      end
    end
    redis.call('HSET', KEYS[1], 'last_id', redis.call('XADD', KEYS[3], '*', 'event', state, 'order', id, 'user', user))
    advanced = advanced + 1
  end
end
return { restored, advanced, conflicts }
