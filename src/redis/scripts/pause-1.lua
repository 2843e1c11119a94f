--[[
  Pauses or resumes a sale, only if it exists: a read first and a write after it let a resume
  racing an archive write `paused` into a sale the archive had just deleted, leaving a sale hash
  with no total behind (issue 30). Purchases of a paused sale are refused in purchase-N.lua.

  Input:
    KEYS[1] sale hash: ticket_total_nums, paused
    ARGV[1] "1": pause; "0": resume

  Output:
    1    done (also when it was already so)
    -2   no such sale (none, or archived)
]]
if not redis.call('HGET', KEYS[1], 'ticket_total_nums') then
  return -2
end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'paused', '1')
else
  redis.call('HDEL', KEYS[1], 'paused')
end
return 1
