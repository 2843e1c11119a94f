--[[
  Puts a batch of users in a sale's waiting room, in arrival order. A user who joined before
  keeps their place: one entry per user per sale, however often they join. Once: a user whose
  admission lapsed without a purchase joins again at the back of the line (the place is then
  marked "r"); a second lapse is final.

  Before the sale's starts_at a user joins the pre-queue: a sorted set scored by a random number
  the caller drew for them, so that its order at the opening (draw-3.lua) is a uniform shuffle
  and arriving early by a millisecond is worth nothing. From starts_at on, users queue in
  arrival order behind the whole pre-queue, which can no longer grow.

  A client (an address or an IPv6 network, as nginx names it) takes at most ARGV[2] places in a
  sale's waiting room: places are never given back (a lapsed one is the same user's to rejoin),
  so one address cannot fill the line with invented names.

  Input:
    KEYS[1] sale hash: ticket_total_nums, queue ("1": the sale has a waiting room), starts_at,
            ends_at, queue_joined (how many joined from the opening on), last_id, recovering
            (nobody joins while recovering: see includes/guard.lua)
    KEYS[2] places hash: user -> position ("<n>r" once rejoined), or "pre" (in the pre-queue,
            not drawn yet)
    KEYS[3] pre-queue sorted set: user, scored by a random number
    KEYS[4] admission steps list, "<ms>:<serving>" oldest first (admit-3.lua): which admissions lapsed
    KEYS[5] holds hash: "p:" .. client -> the places it took (purchase-N.lua keeps "r:" fields)
    ARGV[1] the newest order id of this sale the caller has seen ("0-0": none)
    ARGV[2] most places a client may take; 0: no limit
    ARGV[3..] user, random score, client ("": not counted), ... (the batch, in arrival order)

  Output: one value per user, in ARGV order:
    n >= 1   their position (1 is the front)
    0        in the pre-queue: the position is drawn at the opening
    -2       no such sale
    -3       the sale has ended
    -4       the sale has no waiting room
    -5       the sale is recovering lost orders: try again in a moment
    -6       this user's admission lapsed a second time: no more places
    -7       this user's client has taken as many places as it may
]]
--- @include "includes/stream-ids"
--- @include "includes/guard"
--- @include "includes/clock"

local FIRST = 3
local n = (#ARGV - 2) / 3
local maxPlaces = tonumber(ARGV[2]) or 0
local sale = redis.call('HMGET', KEYS[1], 'ticket_total_nums', 'queue', 'starts_at', 'ends_at', 'queue_joined', 'last_id', 'recovering',
  'queue_admission_ms')
local now = nowMs()
local out = {}

local refuse = nil
if not sale[1] then
  refuse = -2
elseif sale[2] ~= '1' then
  refuse = -4
elseif sale[4] and now >= tonumber(sale[4]) then
  refuse = -3
elseif stopped(sale[6], sale[7], ARGV[1]) then
  refuse = -5
end
if refuse then
  for i = 1, n do
    out[i] = refuse
  end
  return out
end

-- Positions up to this were admitted more than one admission ago: their turn has lapsed.
local lapsed = 0
local window = tonumber(sale[8]) or 0
for _, step in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  local at, value = string.match(step, '^(%d+):(%d+)$')
  if tonumber(at) <= now - window then
    lapsed = math.max(lapsed, tonumber(value))
  end
end

local users = {}
for i = 1, n do
  users[i] = ARGV[FIRST + 3 * i - 3]
end
local held = redis.call('HMGET', KEYS[2], unpack(users))
local early = sale[3] and now < tonumber(sale[3])
local base = nil
local joined = tonumber(sale[5]) or 0
local before = joined
local placed = {}
local news = {}
-- The next place at the back of the line: behind the whole pre-queue, which stopped growing at starts_at.
local function back()
  base = base or redis.call('ZCARD', KEYS[3])
  joined = joined + 1
  return base + joined
end
-- Places each client took, read once per client per batch, and written once at the end.
local places, placesChanged = {}, {}
local function takesPlace(client)
  if maxPlaces == 0 or client == '' then
    return true
  end
  if places[client] == nil then
    places[client] = tonumber(redis.call('HGET', KEYS[5], 'p:' .. client)) or 0
  end
  if places[client] >= maxPlaces then
    return false
  end
  places[client] = places[client] + 1
  placesChanged[client] = true
  return true
end

for i = 1, n do
  local user = users[i]
  local place = placed[user] or held[i]
  local position = place and place ~= 'pre' and tonumber(string.match(place, '^(%d+)'))
  local again = place and string.sub(place, -1) == 'r'
  if position and position <= lapsed and not again then
    position = back()
    placed[user] = position .. 'r'
    news[#news + 1] = user
    news[#news + 1] = placed[user]
    out[i] = position
  elseif position and position <= lapsed then
    out[i] = -6
  elseif place then
    out[i] = place == 'pre' and 0 or position
  elseif not takesPlace(ARGV[FIRST + 3 * i - 1]) then
    out[i] = -7
  elseif early then
    redis.call('ZADD', KEYS[3], ARGV[FIRST + 3 * i - 2], user)
    placed[user] = 'pre'
    news[#news + 1] = user
    news[#news + 1] = 'pre'
    out[i] = 0
  else
    local position = back()
    placed[user] = position
    news[#news + 1] = user
    news[#news + 1] = position
    out[i] = position
  end
end
if #news > 0 then
  redis.call('HSET', KEYS[2], unpack(news))
end
for client in pairs(placesChanged) do
  redis.call('HSET', KEYS[5], 'p:' .. client, places[client])
end
if joined ~= before then
  redis.call('HSET', KEYS[1], 'queue_joined', joined)
end
return out
