-- Reading an order of a sale, shared by settle-4.lua and restore-4.lua (after includes/record). An
-- order is its entry in the states hash (KEYS[4]) once it has one, else its `created` entry on the
-- stream (KEYS[3]).

local function parse(raw)
  local state, payBy, port, updated, user = string.match(raw, '^(%a+)|(%d+)|(%d*)|(%d+)|(.*)$')
  return { state = state, payBy = tonumber(payBy), port = port, user = user }
end

-- A created entry's fields (a flat list) as a reserved order, or nil for any other entry.
local function reservedFrom(id, fields)
  local f = record(fields)
  if f.event ~= 'created' then
    return nil
  end
  local window = tonumber(f.window) or 0
  local payBy = window > 0 and tonumber(string.match(id, '^(%d+)')) + window or 0
  return { state = 'reserved', payBy = payBy, port = f.port or '', user = f.user or '' }
end

-- The order `id` as Redis holds it, or nil.
local function load(id)
  local raw = redis.call('HGET', KEYS[4], id)
  if raw then
    return parse(raw)
  end
  local entry = redis.call('XRANGE', KEYS[3], id, id)[1]
  return entry and reservedFrom(id, entry[2])
end
