--[[
  Stops a sale on every node while the orders Redis lost are restored (restore-4.lua), by marking
  it recovering with the reason: purchases, payments, joins and stock additions refuse while it
  is (includes/guard.lua); resume-1.lua lifts it. Only a sale that exists: an archived sale
  written to here came back as a hash holding only `recovering`.

  Input:
    KEYS[1] sale hash: ticket_total_nums, recovering
    ARGV[1] the reason, for the operator

  Output:
    1    marked
    -2   no such sale (none, or archived)
]]
if not redis.call('HGET', KEYS[1], 'ticket_total_nums') then
  return -2
end
redis.call('HSET', KEYS[1], 'recovering', ARGV[1])
return 1
