-- Shared by every limiter script: a line-for-line port of gigawatt/limits/engine.py.
-- KEYS[1] is the account's hash: bucket arrival times, window starts and totals, rolling slots,
-- open reservations ("r:<id>") and "dl", a lower bound on their deadlines, so that the sweep for
-- expired reservations costs nothing until one may have expired. Numbers travel as %.17g strings
-- because Redis would truncate a Lua number to an integer and %.14g would lose precision.

local H = KEYS[1]
local BURST_S = 60.0
local SLOTS = 60
local TOKEN_SLACK = 1e-3
local TIME_SLACK_S = 1e-5
local CREDIT_SLACK = 1e-9

local function time_slack(interval)
  local slack = TOKEN_SLACK * interval
  if slack > TIME_SLACK_S then return slack end
  return TIME_SLACK_S
end

local function fits(credits, limit)
  local scale = 1.0
  if limit > 1.0 then scale = limit end
  return credits <= limit + CREDIT_SLACK * scale
end

local function fmt(x)
  return string.format('%.17g', x)
end

-- The account's hash is read once (HMGET of every field a call needs), worked on in this table,
-- and written back once (one HSET of the fields that changed): a few commands per call, not dozens.
local cache, dirty = {}, {}

local function preload(fields)
  if #fields == 0 then return end
  local values = redis.call('HMGET', H, unpack(fields))
  for i, f in ipairs(fields) do cache[f] = values[i] end  -- false where missing
end

local function hget(field)
  local v = cache[field]
  if v == nil then
    v = redis.call('HGET', H, field)
    cache[field] = v
  end
  if v == false then return nil end
  return v
end

local function hset(field, value)
  cache[field] = value
  dirty[field] = true
end

-- deletes at once (deletions are rare); returns whether the field existed
local function hdel(field)
  local existed = hget(field) ~= nil
  if existed then
    redis.call('HDEL', H, field)
    cache[field] = false
    dirty[field] = nil
  end
  return existed
end

local function flush()
  local args = {}
  for f in pairs(dirty) do
    args[#args + 1] = f
    args[#args + 1] = cache[f]
  end
  if #args > 0 then redis.call('HSET', H, unpack(args)) end
end

local function num(field, default)
  local v = hget(field)
  if v then return tonumber(v) end
  return default
end

-- rolling slots are one field "<key>:r" = "slot=credits;slot=credits" in ascending slot order
local function read_slots(key)
  local out, order = {}, {}
  local v = hget(key .. ':r')
  if v then
    for i, c in string.gmatch(v, '([^=;]+)=([^;]+)') do
      local n = tonumber(i)
      out[n] = tonumber(c)
      order[#order + 1] = n
    end
  end
  table.sort(order)
  return out, order
end

local function write_slots(key, slots)
  local order = {}
  for i in pairs(slots) do order[#order + 1] = i end
  table.sort(order)
  local parts = {}
  for _, i in ipairs(order) do parts[#parts + 1] = fmt(i) .. '=' .. fmt(slots[i]) end
  hset(key .. ':r', table.concat(parts, ';'))
end

local function add_to_bucket(key, tokens, interval, now)
  local tat = num(key, now)
  if tat < now then tat = now end
  local new_tat = tat + tokens * interval
  if new_tat < now then new_tat = now end
  hset(key, fmt(new_tat))
end

-- (credits used, reset time or nil) of the period open at now (w.s, w.u: as charge_current)
local function open_usage(w, now)
  if w.mode == 'r' then
    local slots, order = read_slots(w.key)
    local slot_s = w.length / SLOTS
    local first = math.floor(now / slot_s) - SLOTS + 1
    local used, oldest = 0.0, nil
    for _, i in ipairs(order) do
      if i >= first then
        used = used + slots[i]
        if oldest == nil then oldest = i end
      end
    end
    if oldest == nil then return 0.0, nil end
    return used, (oldest + SLOTS) * slot_s
  end
  local start = num(w.s, nil)
  if w.mode == 'a' then
    if start == w.start then return num(w.u, 0.0), w.finish end
    return 0.0, w.finish
  end
  if start == nil or now >= start + w.length then return 0.0, nil end
  return num(w.u, 0.0), start + w.length
end

-- returns period, end and, for a session or anchored window, the period as written
-- (w.s and w.u name a session or anchored window's fields)
local function charge_current(w, credits, now)
  if w.mode == 'r' then
    local slot_s = w.length / SLOTS
    local current = math.floor(now / slot_s)
    local slots, order = read_slots(w.key)
    for _, i in ipairs(order) do
      if i <= current - SLOTS then slots[i] = nil end
    end
    slots[current] = (slots[current] or 0.0) + credits
    write_slots(w.key, slots)
    return current, (current + SLOTS) * slot_s
  end
  local start = num(w.s, nil)
  local used
  local finish
  if w.mode == 'a' then
    if start ~= w.start then
      start = w.start
      used = 0.0
    else
      used = num(w.u, 0.0)
    end
    finish = w.finish
  else
    if start == nil or now >= start + w.length then
      start = now
      used = 0.0
    else
      used = num(w.u, 0.0)
    end
    finish = start + w.length
  end
  local start_s = fmt(start)
  hset(w.s, start_s)
  hset(w.u, fmt(used + credits))
  return start, finish, start_s
end

local function period_is_open(key, rolling, period, finish, now)
  if now >= finish then return false end
  if rolling == 1 then
    local slots = read_slots(key)
    return slots[period] ~= nil
  end
  return num(key .. ':s', nil) == period
end

local function add_to_period(key, rolling, period, delta)
  if rolling == 1 then
    local slots = read_slots(key)
    local v = slots[period] + delta
    if v < 0 then v = 0.0 end
    slots[period] = v
    write_slots(key, slots)
  else
    local v = num(key .. ':u', 0.0) + delta
    if v < 0 then v = 0.0 end
    hset(key .. ':u', fmt(v))
  end
end

-- a reservation record: "deadline|bkey,tokens,interval;...|wkey,rolling,credits,period,end;..."
local function undo(record, now)
  local _, _, bpart, wpart = string.find(record, '^[^|]*|([^|]*)|(.*)$')
  for key, tokens, interval in string.gmatch(bpart, '([^,;]+),([^,;]+),([^,;]+)') do
    local t = tonumber(tokens)
    if t ~= 0 then add_to_bucket(key, -t, tonumber(interval), now) end
  end
  for key, rolling, credits, period, finish in
    string.gmatch(wpart, '([^,;]+),([^,;]+),([^,;]+),([^,;]+),([^,;]+)') do
    local r, p = tonumber(rolling), tonumber(period)
    if period_is_open(key, r, p, tonumber(finish), now) then
      add_to_period(key, r, p, -tonumber(credits))
    end
  end
end

-- Release the reservations whose deadline has passed. "dl" is never above the earliest open
-- deadline (settling a reservation leaves it low), so the hash is scanned only once it is due.
local function sweep(now)
  local due = num('dl', nil)
  if due == nil or now < due then return end
  local earliest = nil
  for _, field in ipairs(redis.call('HKEYS', H)) do
    if string.sub(field, 1, 2) == 'r:' then
      local record = hget(field)
      local deadline = tonumber(string.match(record, '^[^|]*'))
      if deadline <= now then
        undo(record, now)
        hdel(field)
      elseif earliest == nil or deadline < earliest then
        earliest = deadline
      end
    end
  end
  if earliest == nil then hdel('dl') else hset('dl', fmt(earliest)) end
end

-- the fields a call reads for its buckets and windows
local function window_fields(fields, key)
  fields[#fields + 1] = key .. ':s'
  fields[#fields + 1] = key .. ':u'
  fields[#fields + 1] = key .. ':r'
end

local function touch(ttl)
  redis.call('EXPIRE', H, ttl)
end
