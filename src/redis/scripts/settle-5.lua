--[[
  Moves orders of one sale along their lifecycle, atomically: reserved -> paid, reserved ->
  cancelled, reserved -> expired. A cancelled or expired order gives its ticket back (sold - 1,
  the user may buy again) exactly once; an order is never both paid and released, whichever
  of a payer and any number of reapers comes first. Every change is an event on the stream.

  Input:
    KEYS[1] sale hash: ticket_sold_nums, ticket_paid_nums
    KEYS[2] buyers hash: user id -> their live order id
    KEYS[3] orders stream: events {event=paid|cancelled|expired, order, user}
    KEYS[4] order states hash: order id -> "state|payBy|port|updatedAt|user"
    KEYS[5] deadlines sorted set: reserved order id scored by its payBy (ms)
    ARGV[1] action: "pay", "cancel" or "expire"
    ARGV[2] pay, cancel: the order id; expire: the most orders to release in this call
    ARGV[3] pay, cancel: the user asking, checked against the order's user ("*": anyone, for
            trusted callers); an anonymous order may be settled by anyone

  Output:
    pay, cancel:
      { 1, state }         done: state is "paid" or "cancelled" (repeating a done action
                           answers the same)
      { -4, state }        not allowed from the order's state (e.g. cancel a paid order)
      { -5, "expired" }    paid too late: the deadline had passed, so it expired now
      { -6, "" }           no such order
      { -7, "" }           the order belongs to another user
    expire:
      { n, id1, ..., idn } the orders released as expired
]]
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parse(raw)
  local state, payBy, port, updated, user = string.match(raw, '^(%a+)|(%d+)|(%d*)|(%d+)|(.*)$')
  return { state = state, payBy = tonumber(payBy), port = port, user = user }
end

local function save(id, o, state, at)
  redis.call('HSET', KEYS[4], id, state .. '|' .. o.payBy .. '|' .. o.port .. '|' .. at .. '|' .. o.user)
end

-- Gives the ticket of a reserved order back, as `reason` (cancelled or expired).
local function release(id, o, reason, at)
  save(id, o, reason, at)
  redis.call('ZREM', KEYS[5], id)
  redis.call('HINCRBY', KEYS[1], 'ticket_sold_nums', -1)
  if o.user ~= '' and redis.call('HGET', KEYS[2], o.user) == id then
    redis.call('HDEL', KEYS[2], o.user)
  end
  redis.call('XADD', KEYS[3], '*', 'event', reason, 'order', id, 'user', o.user)
end

local action = ARGV[1]
local now = nowMs()

if action == 'expire' then
  local due = redis.call('ZRANGE', KEYS[5], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
  local out = { 0 }
  for _, id in ipairs(due) do
    local raw = redis.call('HGET', KEYS[4], id)
    local o = raw and parse(raw)
    if o and o.state == 'reserved' then
      release(id, o, 'expired', now)
      out[#out + 1] = id
    else
      redis.call('ZREM', KEYS[5], id)
    end
  end
  out[1] = #out - 1
  return out
end

local id = ARGV[2]
local raw = redis.call('HGET', KEYS[4], id)
if not raw then
  return { -6, '' }
end
local o = parse(raw)
if o.user ~= '' and ARGV[3] ~= '*' and ARGV[3] ~= o.user then
  return { -7, '' }
end

if action == 'pay' then
  if o.state == 'paid' then
    return { 1, 'paid' }
  end
  if o.state ~= 'reserved' then
    return { -4, o.state }
  end
  if o.payBy > 0 and now >= o.payBy then
    release(id, o, 'expired', now)
    return { -5, 'expired' }
  end
  save(id, o, 'paid', now)
  redis.call('ZREM', KEYS[5], id)
  redis.call('HINCRBY', KEYS[1], 'ticket_paid_nums', 1)
  redis.call('XADD', KEYS[3], '*', 'event', 'paid', 'order', id, 'user', o.user)
  return { 1, 'paid' }
end

if action == 'cancel' then
  if o.state == 'cancelled' then
    return { 1, 'cancelled' }
  end
  if o.state ~= 'reserved' then
    return { -4, o.state }
  end
  release(id, o, 'cancelled', now)
  return { 1, 'cancelled' }
end

return redis.error_reply('settle: unknown action ' .. tostring(action))
