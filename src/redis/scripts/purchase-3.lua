--[[
  Sells tickets of one sale to a batch of buyers, atomically and in order: at most `total` are
  ever sold, a named user holds at most one live order, and every sale is recorded — a `created`
  event on the sale's stream, which is the order itself — in the same step. A batch is what one
  worker gathered while its previous call was in flight; one buyer is a batch of one. Batching
  shares the script's fixed cost among its buyers.

  The original 12306 script tested `total >= sold` before incrementing and so sold total + 1;
  this one refuses as soon as `sold >= total`. `sold` counts live orders: reserved and paid.

  Per buyer this does one command, the XADD; the buyers hash is read once for the whole batch
  (HMGET) and written once (HSET of every new buyer). Each command a script runs has a fixed
  cost in Redis, and each write is also an AOF record. A new order's state ("reserved", until its payBy) is its `created`
  entry; the order states hash only receives orders once they leave that state (settle-4.lua).

  Redis can lose acknowledged writes (a crash under appendfsync everysec, a failover to a
  replica that lagged, a restore from a backup). A node remembers the newest order it saw and
  sends it as ARGV[3]; a sale whose last_id is older than that has gone back in time, and
  selling now would sell the lost seats again. Then nothing is sold: the script marks the sale
  `recovering` (every node stops selling it, code -3) until its orders are restored from the
  database (src/orders/reconcile.ts).

  Input:
    KEYS[1] sale hash: ticket_total_nums, ticket_sold_nums (the original's layout), paused,
            starts_at, ends_at, last_id (the newest id on the sale's stream: orders sold here,
            events of settle-4.lua and restore-4.lua; a reset keeps it), recovering (set while
            the sale's lost orders are being restored)
    KEYS[2] buyers hash: user id -> their live order id
    KEYS[3] orders stream: one event per change; a sale is {event=created, user, port, window},
            and that entry's id is the order id (its first part: the time in milliseconds; the
            order must be paid before that time + window, when window > 0)
    ARGV[1] port of the worker that sells, for the record
    ARGV[2] payment window in ms; 0: orders have no deadline
    ARGV[3] the newest order id of this sale the caller has seen ("0-0": none)
    ARGV[4..n] the buyers' user ids, in arrival order; "" is an anonymous buyer (no per-user
            limit, as in the original)

  Output: two values per buyer, in ARGV order:
    1, orderId     sold (order reserved)
    -1, ""         sold out
    2, orderId     this user already holds live order orderId
    -2, ""         no such sale (the hash has no ticket_total_nums)
    -3, ""         the sale is paused, outside its startsAt/endsAt, or recovering
]]
local out = {}
local FIRST = 4
local sale = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'ticket_sold_nums', 'paused', 'starts_at', 'ends_at', 'last_id', 'recovering')
local total = tonumber(sale[1])
local closed = false
if total and (sale[3] == '1' or sale[4] or sale[5]) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  closed = sale[3] == '1' or (sale[4] and now < tonumber(sale[4])) or (sale[5] and now >= tonumber(sale[5]))
end
--- @include "includes/stream-ids"
--- @include "includes/guard"

if total and not closed and stopped(sale[6], sale[7], ARGV[3]) then
  closed = true
end

if not total or closed then
  local code = total and -3 or -2
  for i = FIRST, #ARGV do
    out[#out + 1] = code
    out[#out + 1] = ''
  end
  return out
end

local sold = tonumber(sale[2]) or 0
local before = sold
local port = ARGV[1]
local window = ARGV[2]

-- The live orders of the batch's named buyers, in one read; a buyer who appears twice in the
-- batch finds the order of their first appearance here too.
local named = {}
for i = FIRST, #ARGV do
  if ARGV[i] ~= '' then
    named[#named + 1] = ARGV[i]
  end
end
local holds = {}
if #named > 0 then
  local current = redis.call('HMGET', KEYS[2], unpack(named))
  for j, user in ipairs(named) do
    if current[j] then
      holds[user] = current[j]
    end
  end
end

local newBuyers = {}
local lastId = nil
for i = FIRST, #ARGV do
  local user = ARGV[i]
  local held = user ~= '' and holds[user]
  if held then
    out[#out + 1] = 2
    out[#out + 1] = held
  elseif sold >= total then
    out[#out + 1] = -1
    out[#out + 1] = ''
  else
    local orderId = redis.call('XADD', KEYS[3], '*', 'event', 'created', 'user', user, 'port', port, 'window', window)
    sold = sold + 1
    lastId = orderId
    if user ~= '' then
      holds[user] = orderId
      newBuyers[#newBuyers + 1] = user
      newBuyers[#newBuyers + 1] = orderId
    end
    out[#out + 1] = 1
    out[#out + 1] = orderId
  end
end

if #newBuyers > 0 then
  redis.call('HSET', KEYS[2], unpack(newBuyers))
end
if sold ~= before then
  redis.call('HSET', KEYS[1], 'ticket_sold_nums', sold, 'last_id', lastId)
end
return out
