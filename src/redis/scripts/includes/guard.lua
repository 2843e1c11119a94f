-- Whether a sale must not change now. Redis can come back older than what the nodes saw (a crash
-- under appendfsync everysec, a failover to a replica that lagged, a restored backup); any write
-- before the lost orders are restored would hide the loss: its new stream ids would look newer
-- than every mark the loss is checked against. So a sale that is `recovering`, or whose last_id
-- is older than the newest id the caller saw (it is then marked recovering for every node),
-- refuses every change until the reconciler has restored it (restore-4.lua, resume-1.lua).
-- Needs includes/stream-ids (older). `lastId` and `recovering` are the sale hash's fields,
-- `seen` the caller's newest id ("0-0": none known), `k` the index of the sale hash in KEYS
-- (default 1; a script of several sales passes its own).
local function stopped(lastId, recovering, seen, k)
  if recovering then
    return true
  end
  if seen ~= '0-0' and older(lastId or '0-0', seen) then
    redis.call('HSET', KEYS[k or 1], 'recovering', 'Redis lost writes: its newest order is ' .. (lastId or 'none') .. ', a node saw ' .. seen)
    return true
  end
  return false
end
