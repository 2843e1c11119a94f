-- Payment deadlines across Redis outages. While a sale's Redis could not be reached, its buyers
-- could not pay; the time lost is given back: an order's deadline moves by every outage that
-- overlapped its pay window (and the window's extension). Outages are kept in the sale hash's
-- `outages` field as "id,start,end;..." (ms, Redis' clock), one entry per outage a node saw,
-- at most 32 (the oldest go first); overlapping entries (several nodes saw one outage) count once.

-- The entries of `raw`, as { id, s, e }.
local function outageList(raw)
  local list = {}
  for id, s, e in string.gmatch(raw or '', '([^,;]+),(%d+),(%d+)') do
    list[#list + 1] = { id = id, s = tonumber(s), e = tonumber(e) }
  end
  return list
end

-- Adds the outage `spec` ("id:msAgoStart:msAgoEnd:asked", measured by the caller's clock when it
-- made the call, so no clock needs to agree with Redis'; `asked` is that moment on Redis' clock
-- as the caller reckons it, 0 when unknown) to the sale hash KEYS[1]; an entry with the same id
-- keeps the widest bounds. The outage is placed before `asked`, not before `now` (when Redis runs
-- the call): a call that waited behind a frozen Redis would record it ending that much later.
-- Returns the new list.
local function recordOutage(raw, spec, now)
  local list = outageList(raw)
  local id, agoStart, agoEnd, asked = string.match(spec or '', '^([%w._-]+):(%d+):(%d+):?(%d*)$')
  if not id then
    return list
  end
  asked = tonumber(asked) or 0
  local base = asked > 0 and math.min(now, asked) or now
  local s, e = base - tonumber(agoStart), base - tonumber(agoEnd)
  if e <= s then
    return list
  end
  local found = false
  for _, o in ipairs(list) do
    if o.id == id then
      found = true
      if s >= o.s and e <= o.e then
        return list
      end
      o.s, o.e = math.min(o.s, s), math.max(o.e, e)
    end
  end
  if not found then
    list[#list + 1] = { id = id, s = s, e = e }
  end
  table.sort(list, function(a, b) return a.e < b.e end)
  while #list > 32 do
    table.remove(list, 1)
  end
  local parts = {}
  for i, o in ipairs(list) do
    parts[i] = o.id .. ',' .. o.s .. ',' .. o.e
  end
  redis.call('HSET', KEYS[1], 'outages', table.concat(parts, ';'))
  return list
end

-- The deadline of an order created at `created` with deadline `payBy` (0: none), moved by the
-- outages, by at most one pay window in all: freezing Redis again and again must not hold a seat
-- for ever (8 s orders stayed reserved 45 s under a freeze every 3 s).
local function deadline(payBy, created, list)
  if payBy == 0 or #list == 0 then
    return payBy
  end
  local sorted = {}
  for i, o in ipairs(list) do
    sorted[i] = o
  end
  table.sort(sorted, function(a, b) return a.s < b.s end)
  local d, reached = payBy, created
  for _, o in ipairs(sorted) do
    if o.s >= d then
      break
    end
    -- Only the part of the outage after the order existed and not counted yet.
    local from = math.max(o.s, reached)
    if o.e > from then
      d = d + (o.e - from)
      reached = o.e
    end
  end
  return math.min(d, payBy + (payBy - created))
end
