--[[
  Sells one ticket of a sale, atomically: at most `total` are ever sold, a named user gets at
  most one, and every sale is recorded on the sale's order stream in the same step.

  The original 12306 script tested `total >= sold` before incrementing and so sold total + 1;
  this one refuses as soon as `sold >= total`.

  Input:
    KEYS[1] sale hash: fields ticket_total_nums, ticket_sold_nums (the original's layout)
    KEYS[2] buyers hash: user id -> order id
    KEYS[3] orders stream: one entry per sale (user, port, time)
    ARGV[1] user id, or "" for an anonymous purchase (no per-user limit, as in the original)
    ARGV[2] port of the worker that sells, for the record

  Output:
    { 1, orderId, sold }   sold: orderId is the stream entry id, sold the new sold count
    { -1 }                 sold out
    { 2, orderId }         this user already holds orderId
    { -2 }                 no such sale (the hash has no ticket_total_nums)
]]
local user = ARGV[1]

if user ~= '' then
  local held = redis.call('HGET', KEYS[2], user)
  if held then
    return { 2, held }
  end
end

local sale = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'ticket_sold_nums')
local total = tonumber(sale[1])
if not total then
  return { -2 }
end
local sold = tonumber(sale[2]) or 0
if sold >= total then
  return { -1 }
end

local now = redis.call('TIME')
local ms = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local orderId = redis.call('XADD', KEYS[3], '*', 'user', user, 'port', ARGV[2], 'time', ms)
redis.call('HINCRBY', KEYS[1], 'ticket_sold_nums', 1)
if user ~= '' then
  redis.call('HSET', KEYS[2], user, orderId)
end
return { 1, orderId, sold + 1 }
