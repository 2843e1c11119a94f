--[[
  Stops a sale on every node while the orders Redis lost are restored (restore-4.lua), by marking
  it recovering with the reason: purchases, payments, joins and stock additions refuse while it
  is (includes/guard.lua); resume-1.lua lifts it. A sale already recovering keeps its mark: every
  node restoring it joins the same recovery (each adds its journal, see orders/reconcile.ts). Only
  a sale that exists: an archived sale written to here came back as a hash holding only `recovering`.

  Input:
    KEYS[1] sale hash: ticket_total_nums, recovering
    ARGV[1] the reason, for the operator

  Output:
    the sale's recovering mark after the call (the one it had, or ARGV[1])
    -2   no such sale (none, or archived)
]]
if not redis.call('HGET', KEYS[1], 'ticket_total_nums') then
  return -2
end
local mark = redis.call('HGET', KEYS[1], 'recovering')
if not mark then
  mark = ARGV[1]
  redis.call('HSET', KEYS[1], 'recovering', mark)
end
return mark
