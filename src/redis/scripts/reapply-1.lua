--[[
  Puts back what an operator last set of a sale, as a node recorded it (orders/sale-record.ts),
  during a recovery: a Redis restored from an older copy lost the stock added and the pauses made
  since, so the orders restored from the journals counted as oversold against the old total, and a
  paused sale sold again. The total only rises (an addition is never undone); the pause is taken
  when the record is newer than the last one applied (nodes recorded different operators' actions).

  Input:
    KEYS[1] sale hash: ticket_total_nums, paused, settings_at
    ARGV[1] the recorded total ("" none)
    ARGV[2] "1" paused, "0" selling, "" not recorded
    ARGV[3] when it was recorded (ms)

  Output:
    1    done
    -2   no such sale (none, or archived)
]]
local total = tonumber(redis.call('HGET', KEYS[1], 'ticket_total_nums'))
if not total then
  return -2
end
local wanted = tonumber(ARGV[1])
if wanted and wanted > total then
  redis.call('HSET', KEYS[1], 'ticket_total_nums', wanted)
end
local at = tonumber(ARGV[3]) or 0
if ARGV[2] ~= '' and at > (tonumber(redis.call('HGET', KEYS[1], 'settings_at')) or 0) then
  if ARGV[2] == '1' then
    redis.call('HSET', KEYS[1], 'paused', '1')
  else
    redis.call('HDEL', KEYS[1], 'paused')
  end
  redis.call('HSET', KEYS[1], 'settings_at', ARGV[3])
end
return 1
