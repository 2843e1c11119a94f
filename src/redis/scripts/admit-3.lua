--[[
  Moves a sale's serving counter: everyone at a position up to it is admitted, for
  queue_admission_ms from the step that reached them. Any node's supervisor may call it at any
  time (they agree through these fields); it reads the sale and Redis' clock, so two nodes'
  calls a moment apart admit no more than one would.

  Admitted-but-not-yet-bought users must not exceed what remains times `factor`. Every admitted
  position has either bought (its order counts in sold + cancelled + expired), or let its
  admission expire (positions up to the serving counter as it was one admission window ago), or
  is still active. So active <= serving - max(bought, expired), and the counter moves to at most
  max(bought, expired) + ceil(factor * remaining): a slot not used in time goes to the next in
  line once its admission ends. It moves at most queue_rate positions a second, never past the
  last position given, and not while the sale is closed or its pre-queue is not drawn yet.

  Input:
    KEYS[1] sale hash: ticket_total_nums, ticket_sold_nums, ticket_cancelled_nums,
            ticket_expired_nums, ticket_paid_nums, queue, queue_admission_ms, queue_rate,
            queue_serving, queue_step_at, queue_joined, queue_drawn, starts_at, ends_at,
            paused, recovering, last_id (no step while recovering: see includes/guard.lua)
    KEYS[2] pre-queue sorted set (its size: the positions drawn at the opening)
    KEYS[3] steps list: "<ms>:<serving>", oldest first; trimmed to the last admission window
            plus the step just before it
    ARGV[1] factor: admitted-but-not-bought users per remaining ticket, e.g. 1.2
    ARGV[2] shortest time between two steps, in ms
    ARGV[3] the newest order id of this sale the caller has seen ("0-0": none)

  Output:
    -4 when the sale has no waiting room (or does not exist); else
    { serving, tail (positions given), pre (pre-queue size), drawn (0/1), final (1: sold out
      and no reserved order can come back), now (ms), steps... (the list, oldest first) }
]]
--- @include "includes/stream-ids"
--- @include "includes/guard"
--- @include "includes/clock"

local f = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'ticket_sold_nums', 'ticket_cancelled_nums',
  'ticket_expired_nums', 'ticket_paid_nums', 'queue', 'queue_admission_ms', 'queue_rate', 'queue_serving',
  'queue_step_at', 'queue_joined', 'queue_drawn', 'starts_at', 'ends_at', 'paused', 'recovering', 'last_id')
if not f[1] or f[6] ~= '1' then
  return -4
end
local halted = stopped(f[17], f[16], ARGV[3])
local now = nowMs()
local num = function(v) return tonumber(v) or 0 end
local total, sold, paid = num(f[1]), num(f[2]), num(f[5])
local bought = sold + num(f[3]) + num(f[4])
local window, rate = num(f[7]), num(f[8])
local serving = num(f[9])
local stepAt = tonumber(f[10]) or (now - 1000)
local pre = redis.call('ZCARD', KEYS[2])
local tail = pre + num(f[11])
local drawn = f[12] == '1' or (pre == 0 and not (f[13] and now < tonumber(f[13])))
local open = f[15] ~= '1' and not halted and not (f[13] and now < tonumber(f[13])) and not (f[14] and now >= tonumber(f[14]))

-- The steps: the serving counter one admission window ago is the last step at or before then.
local steps = redis.call('LRANGE', KEYS[3], 0, -1)
local expired, keepFrom = 0, 0
for i, step in ipairs(steps) do
  local at, value = string.match(step, '^(%d+):(%d+)$')
  if tonumber(at) <= now - window then
    expired = tonumber(value)
    keepFrom = i - 1
  end
end
if keepFrom > 0 then
  redis.call('LTRIM', KEYS[3], keepFrom, -1)
end

local remaining = math.max(0, total - sold)
local target = math.max(bought, expired) + math.ceil(tonumber(ARGV[1]) * remaining)
local credit = math.floor(rate * math.min(now - stepAt, 1000) / 1000)
local nextServing = math.min(target, serving + credit, tail)
if open and drawn and nextServing > serving and now - stepAt >= tonumber(ARGV[2]) then
  serving = nextServing
  redis.call('RPUSH', KEYS[3], now .. ':' .. serving)
  redis.call('HSET', KEYS[1], 'queue_serving', serving, 'queue_step_at', now)
end

local final = (remaining == 0 and sold - paid <= 0) and 1 or 0
local out = { serving, tail, pre, drawn and 1 or 0, final, now }
for _, step in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  out[#out + 1] = step
end
return out
