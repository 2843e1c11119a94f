--[[
  The bench's durable baseline (baseline-durable.ts): what a naive durable seckill does in Redis
  per request, in one script call: the stock check, the per-user check, the count and the order
  on a stream, as purchase-N.lua does for a batch. No local stock, no batching.

  Input:
    KEYS[1] sale hash: total, sold
    KEYS[2] buyers hash: user -> order id
    KEYS[3] orders stream
    ARGV[1] user
  Output: { 1, orderId } sold, { 2, orderId } the user holds one, { -1, '' } sold out
]]
local sale = redis.call('HMGET', KEYS[1], 'total', 'sold')
if (tonumber(sale[2]) or 0) >= (tonumber(sale[1]) or 0) then
  return { -1, '' }
end
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  return { 2, held }
end
local id = redis.call('XADD', KEYS[3], '*', 'event', 'created', 'user', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('HINCRBY', KEYS[1], 'sold', 1)
return { 1, id }
