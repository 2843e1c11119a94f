--[[
  Sells tickets to a batch of buyers, atomically and in order, for one or more sales that live
  in one Redis slot (every sale on a single Redis; the sales of one slot on a Cluster): at most
  `total` are ever sold per sale, a named user holds at most one live order of a sale, a client
  (an address or an IPv6 network, as nginx names it) holds at most ARGV[3] unpaid orders of a
  sale, and every sale is recorded — a `created` event on the sale's stream, which is the order
  itself — in the same step. A batch is what one worker gathered in one event-loop turn: one
  call for all the sales of that turn, however its buyers are spread over them.

  The original 12306 script tested `total >= sold` before incrementing and so sold total + 1;
  this one refuses as soon as `sold >= total`. `sold` counts live orders: reserved and paid.

  Per buyer this does one command, the XADD; each sale's buyers and holds are read once per
  batch (HMGET) and written once (HSET). A new order's state ("reserved", until its payBy) is
  its `created` entry; the order states hash only receives orders once they leave that state.

  A client's holds are the ids of the orders it reserved. Only when a client reaches the limit
  are they checked against the states hash, and those no longer reserved (paid, cancelled,
  expired, by whichever script) dropped: paying, the reaper and a restore need not know of
  holds, and a count can never drift from the orders. A sale with a waiting room counts places
  instead (join-5.lua): its buyers were admitted, and their client already counted.

  Redis can lose acknowledged writes; the caller sends the newest order it saw of each sale, and
  a sale whose last_id is older sells nothing and is marked recovering (includes/guard.lua).

  Input (the number of keys is given first: 5 per sale, in the order of the sales in ARGV):
    KEYS[5s+1] sale s's hash: ticket_total_nums, ticket_sold_nums (the original's layout),
               paused, starts_at, ends_at, last_id, recovering, queue
    KEYS[5s+2] its buyers hash: user id -> their live order id
    KEYS[5s+3] its orders stream: {event=created, user, port, window} per sale; that entry's id
               is the order id (the time in ms, then a sequence)
    KEYS[5s+4] its order states hash: order id -> "state|..." once it left `reserved`
    KEYS[5s+5] its holds hash: "r:" .. client -> the ids of its unpaid orders, comma-separated
    ARGV[1] port of the worker that sells, for the record
    ARGV[2] payment window in ms; 0: orders have no deadline
    ARGV[3] most unpaid orders a client may hold in a sale; 0: no limit
    ARGV[4..] per sale, in KEYS order: the newest order id of it the caller has seen ("0-0":
            none), the number of its buyers n, then n pairs: user ("" anonymous: no per-user
            limit, as in the original), client ("" none: no per-client limit)

  Output: two values per buyer, sale after sale, each in arrival order:
    1, orderId     sold (order reserved)
    -1, ""         sold out
    2, orderId     this user already holds live order orderId
    -2, ""         no such sale (the hash has no ticket_total_nums)
    -3, ""         the sale is paused, outside its startsAt/endsAt, or recovering
    -4, ""         this client holds as many unpaid orders as it may
]]
--- @include "includes/stream-ids"
--- @include "includes/guard"

local out = {}
local port, window, maxHolds = ARGV[1], ARGV[2], tonumber(ARGV[3]) or 0

--- @include "includes/clock"

local function answer(code, id)
  out[#out + 1] = code
  out[#out + 1] = id
end

-- The values of the distinct non-empty `names` in the hash KEYS[i] (field prefix `prefix`), in one HMGET.
local function readMany(i, names, prefix)
  local list, fields, found = {}, {}, {}
  for _, name in ipairs(names) do
    if name ~= '' and not found[name] then
      found[name] = false
      list[#list + 1] = name
      fields[#fields + 1] = prefix .. name
    end
  end
  if #list > 0 then
    local values = redis.call('HMGET', KEYS[i], unpack(fields))
    for j, name in ipairs(list) do
      found[name] = values[j]
    end
  end
  return found
end

-- A client's holds field as a list of order ids.
local function holdsOf(raw)
  local ids = {}
  for id in string.gmatch(raw or '', '[^,]+') do
    ids[#ids + 1] = id
  end
  return ids
end

-- Those of `ids` still reserved: not in the states hash (KEYS[k + 3]), or there as reserved.
local function stillHeld(k, ids)
  local kept = {}
  for _, id in ipairs(ids) do
    local state = redis.call('HGET', KEYS[k + 3], id)
    if not state or string.sub(state, 1, 9) == 'reserved|' then
      kept[#kept + 1] = id
    end
  end
  return kept
end

-- Whether the sale takes no buyers now: recovering, paused, or outside its start and end. Recovery
-- first: a paused sale on a Redis that lost writes is marked for restoring too, not left unnoticed.
local function closed(k, sale, seen)
  if stopped(sale[6], sale[7], seen, k) then
    return true
  end
  if sale[3] == '1' then
    return true
  end
  if sale[4] or sale[5] then
    local t = nowMs()
    if (sale[4] and t < tonumber(sale[4])) or (sale[5] and t >= tonumber(sale[5])) then
      return true
    end
  end
  return false
end

-- Sells one sale's buyers: `k` its first key, `seen` the caller's mark, `buyers` {user, client} pairs.
local function sellSale(k, seen, buyers)
  local sale = redis.call('HMGET', KEYS[k], 'ticket_total_nums', 'ticket_sold_nums', 'paused', 'starts_at', 'ends_at', 'last_id', 'recovering',
    'queue')
  local total = tonumber(sale[1])
  local refusal = not total and -2 or (closed(k, sale, seen) and -3)
  if refusal then
    for _ = 1, #buyers do
      answer(refusal, '')
    end
    return
  end
  local users, clients = {}, {}
  for i, b in ipairs(buyers) do
    users[i], clients[i] = b[1], b[2]
  end
  local limit = sale[8] ~= '1' and maxHolds or 0
  local live = readMany(k + 1, users, '')
  local rawHolds = limit > 0 and readMany(k + 4, clients, 'r:') or {}
  local holds, pruned, changed = {}, {}, {}
  local sold, before, lastId = tonumber(sale[2]) or 0, tonumber(sale[2]) or 0, nil
  local newBuyers = {}
  for _, b in ipairs(buyers) do
    local user, client = b[1], b[2]
    local counted = limit > 0 and client ~= ''
    if counted and not holds[client] then
      holds[client] = holdsOf(rawHolds[client])
    end
    if counted and #holds[client] >= limit and not pruned[client] then
      local had = #holds[client]
      holds[client], pruned[client] = stillHeld(k, holds[client]), true
      changed[client] = #holds[client] ~= had
    end
    if user ~= '' and live[user] then
      answer(2, live[user])
    elseif counted and #holds[client] >= limit then
      answer(-4, '')
    elseif sold >= total then
      answer(-1, '')
    else
      local orderId = redis.call('XADD', KEYS[k + 2], '*', 'event', 'created', 'user', user, 'port', port, 'window', window)
      sold, lastId = sold + 1, orderId
      if user ~= '' then
        live[user] = orderId
        newBuyers[#newBuyers + 1] = user
        newBuyers[#newBuyers + 1] = orderId
      end
      if counted then
        table.insert(holds[client], orderId)
        changed[client] = true
      end
      answer(1, orderId)
    end
  end
  if #newBuyers > 0 then
    redis.call('HSET', KEYS[k + 1], unpack(newBuyers))
  end
  for client in pairs(changed) do
    if #holds[client] > 0 then
      redis.call('HSET', KEYS[k + 4], 'r:' .. client, table.concat(holds[client], ','))
    else
      redis.call('HDEL', KEYS[k + 4], 'r:' .. client)
    end
  end
  if sold ~= before then
    redis.call('HSET', KEYS[k], 'ticket_sold_nums', sold, 'last_id', lastId)
  end
end

local a = 4
for s = 0, #KEYS / 5 - 1 do
  local seen, n = ARGV[a], tonumber(ARGV[a + 1])
  local buyers = {}
  for i = 1, n do
    buyers[i] = { ARGV[a + 2 * i], ARGV[a + 2 * i + 1] }
  end
  a = a + 2 + 2 * n
  sellSale(5 * s + 1, seen, buyers)
end
return out
