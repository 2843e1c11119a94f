--[[
  Moves orders of one sale along their lifecycle, atomically: reserved -> paid, reserved ->
  cancelled, reserved -> expired. A cancelled or expired order gives its ticket back (sold - 1,
  the user may buy again) exactly once; an order is never both paid and released, whichever
  of a payer and any number of reapers comes first. Every change is an event on the stream.

  Where an order's state is: purchase-N.lua writes only the `created` entry, which means
  "reserved until payBy". The states hash holds every order that left that state (and, once
  the reaper passed them, reserved orders without a deadline), so an order is its states entry
  if it has one, else its `created` entry.

  Expiry walks the stream in id order from the sale's `reaped_to` cursor, which only passes an
  order once its state is in the hash: entries up to the cursor may be trimmed without losing
  any order. With one payment window, deadlines rise with ids, so the walk stops at the first
  reserved order not yet due. (Should the window shrink across a restart, later orders wait
  behind earlier ones: they expire late, never early.)

  Deadlines move by the outages of the sale's Redis (includes/deadlines.lua): a buyer who could
  not pay while Redis was unreachable gets that time back, and the caller's own view of the
  last outage is recorded first, so a payment right after an outage is never "too late" because
  no node had recorded it yet. Like a purchase, nothing changes while the sale is recovering
  lost orders, or when Redis is older than the caller's newest order (includes/guard.lua).

  Input:
    KEYS[1] sale hash: ticket_sold_nums, ticket_paid_nums, ticket_cancelled_nums,
            ticket_expired_nums, reaped_to (the expiry cursor), last_id (the newest stream id),
            recovering, outages
    KEYS[2] buyers hash: user id -> their live order id
    KEYS[3] orders stream: created entries {event=created, user, port, window} (payBy = the
            id's milliseconds + window; window 0: no deadline); events
            {event=paid|cancelled|expired, order, user}; {event=restored, order, user, state}
            for an order put back after Redis lost it (its state is in the states hash)
    KEYS[4] order states hash: order id -> "state|payBy|port|updatedAt|user"
    ARGV[1] action: "pay", "cancel" or "expire"
    ARGV[2] pay, cancel: the order id; expire: the most stream entries to walk in this call
    ARGV[3] pay, cancel: the user asking, checked against the order's user ("*": anyone, for
            trusted callers, and for the holder of an anonymous order's secret); an anonymous
            order is settled only with "*"
    ARGV[4] the newest order id of this sale the caller has seen ("0-0": none)
    ARGV[5] the last Redis outage the caller saw, "id:msAgoStart:msAgoEnd", or ""
    ARGV[6] when the caller asked, on Redis' clock as it reckons it (0: unknown). Deadlines are
            judged at that time, not when Redis runs the call: an expiry sent just before Redis
            froze, or a payment sent before the deadline, must not act on the time Redis woke up
    ARGV[7] expire: when Redis runs the call more than this many ms after ARGV[6], it does
            nothing (0: no limit): its caller has stopped waiting and would never learn of it

  Output:
    { -3, "" }             nothing changed: the sale is recovering lost orders (any action)
    { -6, "" }             no such sale (none, or archived): nothing changed (any action)
    pay, cancel:
      { 1, state }         done: state is "paid" or "cancelled" (repeating a done action
                           answers the same)
      { -4, state }        not allowed from the order's state (e.g. cancel a paid order)
      { -5, "expired" }    paid too late: the deadline had passed, so it expired now
      { -6, "" }           no such order
      { -7, "" }           the order belongs to another user (or is anonymous, and ARGV[3] is not "*")
    expire:
      { n, more, next, id1, user1, ..., idn, usern } the orders released as expired, each
                           with its user ("" anonymous); more = 1 when the walk stopped at
                           ARGV[2] entries, not at an order still due later; next = the
                           deadline (ms, Redis' clock) of that order, 0 when no order waits
                           for one: the reaper need not come back before it
]]
--- @include "includes/stream-ids"
--- @include "includes/guard"
--- @include "includes/deadlines"
--- @include "includes/clock"

--- @include "includes/record"
--- @include "includes/orders"

-- Appends an event to the stream; last_id follows the newest stream id (see purchase-N.lua).
local function event(kind, id, user)
  local at = redis.call('XADD', KEYS[3], '*', 'event', kind, 'order', id, 'user', user)
  redis.call('HSET', KEYS[1], 'last_id', at)
end

local function save(id, o, state, at)
  redis.call('HSET', KEYS[4], id, state .. '|' .. o.payBy .. '|' .. o.port .. '|' .. at .. '|' .. o.user)
end

-- Gives the ticket of a reserved order back, as `reason` (cancelled or expired).
local function release(id, o, reason, at)
  save(id, o, reason, at)
  redis.call('HINCRBY', KEYS[1], 'ticket_sold_nums', -1)
  redis.call('HINCRBY', KEYS[1], 'ticket_' .. reason .. '_nums', 1)
  if o.user ~= '' and redis.call('HGET', KEYS[2], o.user) == id then
    redis.call('HDEL', KEYS[2], o.user)
  end
  event(reason, id, o.user)
end

local action = ARGV[1]
local now = nowMs()
-- The time deadlines are judged at: when the caller asked (never later than now).
local asked = tonumber(ARGV[6]) or 0
local at = asked > 0 and math.min(now, asked) or now
local sale = redis.call('HMGET', KEYS[1], 'last_id', 'recovering', 'outages', 'ticket_total_nums')
-- A sale deleted meanwhile (archived) must not come back as a hash of outages.
if not sale[4] then
  return { -6, '' }
end
if stopped(sale[1], sale[2], ARGV[4]) then
  return { -3, '' }
end
local outages = recordOutage(sale[3], ARGV[5], now)
-- An order's deadline, moved by the outages.
local function deadlineOf(id, o)
  return deadline(o.payBy, tonumber(string.match(id, '^(%d+)')), outages)
end

if action == 'expire' then
  local late = tonumber(ARGV[7]) or 0
  if asked > 0 and late > 0 and now - asked > late then
    return { 0, 0, 0 }
  end
  local budget = tonumber(ARGV[2])
  local start = redis.call('HGET', KEYS[1], 'reaped_to')
  local cursor = start
  local out = { 0, 0, 0 }
  local due = true
  local nextDue = 0
  while due and budget > 0 do
    local entries = redis.call('XRANGE', KEYS[3], cursor and ('(' .. cursor) or '-', '+', 'COUNT', math.min(budget, 100))
    if #entries == 0 then
      break
    end
    for _, entry in ipairs(entries) do
      -- An order stands on the stream as its `created` entry, or, once restored after Redis
      -- lost it (restore-4.lua), as a `restored` entry naming it; the states hash then holds it.
      local id = entry[1]
      local o = reservedFrom(id, entry[2])
      local raw = nil
      if o then
        raw = redis.call('HGET', KEYS[4], id)
      else
        local f = record(entry[2])
        if f.event == 'restored' and f.order then
          id = f.order
          raw = redis.call('HGET', KEYS[4], id)
          o = raw and parse(raw)
        end
      end
      if o then
        if raw then
          o = parse(raw)
        end
        if o.state == 'reserved' then
          if o.payBy == 0 then
            -- No deadline: keep it reserved, but in the hash, so its entry may be trimmed.
            if not raw then
              save(id, o, 'reserved', tonumber(string.match(id, '^(%d+)')))
            end
          elseif deadlineOf(id, o) <= at then
            release(id, o, 'expired', now)
            out[#out + 1] = id
            out[#out + 1] = o.user
          else
            due, nextDue = false, deadlineOf(id, o)
            break
          end
        end
      end
      cursor = entry[1]
      budget = budget - 1
    end
  end
  if cursor ~= start then
    redis.call('HSET', KEYS[1], 'reaped_to', cursor)
  end
  out[1] = (#out - 3) / 2
  out[2] = (due and budget == 0) and 1 or 0
  out[3] = nextDue
  return out
end

local id = ARGV[2]
if not string.match(id, '^%d+%-%d+$') then
  return { -6, '' }
end
local o = load(id)
if not o then
  return { -6, '' }
end
if ARGV[3] ~= '*' and (o.user == '' or ARGV[3] ~= o.user) then
  return { -7, '' }
end

if action == 'pay' then
  if o.state == 'paid' then
    return { 1, 'paid' }
  end
  if o.state ~= 'reserved' then
    return { -4, o.state }
  end
  if o.payBy > 0 and at >= deadlineOf(id, o) then
    release(id, o, 'expired', now)
    return { -5, 'expired' }
  end
  save(id, o, 'paid', now)
  redis.call('HINCRBY', KEYS[1], 'ticket_paid_nums', 1)
  event('paid', id, o.user)
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
