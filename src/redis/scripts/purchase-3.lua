--[[
  Sells tickets of one sale to a batch of buyers, atomically and in order: at most `total` are
  ever sold, a named user gets at most one, and every sale is recorded on the sale's order
  stream in the same step. A batch is what one worker gathered in one event-loop turn; one
  buyer is a batch of one. Batching shares the script's fixed cost among its buyers.

  The original 12306 script tested `total >= sold` before incrementing and so sold total + 1;
  this one refuses as soon as `sold >= total`.

  Input:
    KEYS[1] sale hash: fields ticket_total_nums, ticket_sold_nums (the original's layout)
    KEYS[2] buyers hash: user id -> order id
    KEYS[3] orders stream: one entry per ticket sold (user, port); the entry id is the order
            id, and its first part is the sale's time in milliseconds
    ARGV[1] port of the worker that sells, for the record
    ARGV[2..n] the buyers' user ids, in arrival order; "" is an anonymous buyer (no per-user
            limit, as in the original)

  Output: two values per buyer, in ARGV order:
    1, orderId     sold
    -1, ""         sold out
    2, orderId     this user already holds orderId
    -2, ""         no such sale (the hash has no ticket_total_nums)
]]
local out = {}
local total = tonumber(redis.call('HGET', KEYS[1], 'ticket_total_nums'))
if not total then
  for i = 2, #ARGV do
    out[#out + 1] = -2
    out[#out + 1] = ''
  end
  return out
end

local sold = tonumber(redis.call('HGET', KEYS[1], 'ticket_sold_nums')) or 0
local before = sold
local port = ARGV[1]
for i = 2, #ARGV do
  local user = ARGV[i]
  local held = false
  if user ~= '' then
    held = redis.call('HGET', KEYS[2], user)
  end
  if held then
    out[#out + 1] = 2
    out[#out + 1] = held
  elseif sold >= total then
    out[#out + 1] = -1
    out[#out + 1] = ''
  else
    local orderId = redis.call('XADD', KEYS[3], '*', 'user', user, 'port', port)
    sold = sold + 1
    if user ~= '' then
      redis.call('HSET', KEYS[2], user, orderId)
    end
    out[#out + 1] = 1
    out[#out + 1] = orderId
  end
end

if sold ~= before then
  redis.call('HSET', KEYS[1], 'ticket_sold_nums', sold)
end
return out
