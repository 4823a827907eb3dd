-- admit: ARGV = now, reservation id, deadline, bucket count, window count, credits, key ttl,
--   then each bucket's cost,
--   then per bucket: key, limit, interval
--   then per window: key, mode (s|a|r), length, limit, start, end, relief_at, relief_limit
-- (the caller formats everything after the costs once per set of limits)
-- returns {admitted, refused (e.g. "b2", "w1" or ""), retry_after ("" if never),
--   per bucket its TAT after, per window: used, reset ("" if none), period, end}
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local deadline = tonumber(ARGV[3])
local nb, nw = tonumber(ARGV[4]), tonumber(ARGV[5])
local credits = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])

local buckets, windows = {}, {}
local a = 8 + nb
for i = 1, nb do
  local cost_s = ARGV[7 + i]
  buckets[i] = {key = ARGV[a], limit = tonumber(ARGV[a + 1]), interval = tonumber(ARGV[a + 2]),
                cost = tonumber(cost_s), interval_s = ARGV[a + 2], cost_s = cost_s}
  a = a + 3
end
local fields = {'dl'}
for _, b in ipairs(buckets) do fields[#fields + 1] = b.key end
for i = 1, nw do
  local key, mode = ARGV[a], ARGV[a + 1]
  local w = {key = key, mode = mode, length = tonumber(ARGV[a + 2]),
             limit = tonumber(ARGV[a + 3]), start = tonumber(ARGV[a + 4]),
             finish = tonumber(ARGV[a + 5]), relief_at = tonumber(ARGV[a + 6]),
             relief_limit = tonumber(ARGV[a + 7])}
  -- the window's field names, made once: a rolling window keeps slots, the others a start
  -- and a total
  if mode == 'r' then
    fields[#fields + 1] = key .. ':r'
  else
    w.s, w.u = key .. ':s', key .. ':u'
    fields[#fields + 1] = w.s
    fields[#fields + 1] = w.u
  end
  windows[i] = w
  a = a + 8
end
preload(fields)
sweep(now)

-- wait: 0 fits now, false never, else seconds
local function bucket_wait(b)
  if b.cost > b.limit then return false end
  local tat = num(b.key, now)
  if tat < now then tat = now end
  local over = tat + b.cost * b.interval - now - BURST_S
  if over <= time_slack(b.interval) then return 0 end
  return over
end

local function rolling_fits_at(w)
  local slots, order = read_slots(w.key)
  local slot_s = w.length / SLOTS
  local first = math.floor(now / slot_s) - SLOTS + 1
  local remaining = 0.0
  for _, i in ipairs(order) do
    if i >= first then remaining = remaining + slots[i] end
  end
  for _, i in ipairs(order) do
    if i >= first then
      remaining = remaining - slots[i]
      if fits(remaining + credits, w.limit) then return (i + SLOTS) * slot_s end
    end
  end
  return nil
end

local function window_wait(w)
  local used, reset_at = open_usage(w, now)
  if fits(used + credits, w.limit) then return 0 end
  local best = nil
  if fits(credits, w.limit) then
    local freed_at = reset_at
    if w.mode == 'r' then freed_at = rolling_fits_at(w) end
    if freed_at ~= nil then best = freed_at end
  end
  if w.relief_at ~= 0 and fits(credits, w.relief_limit) then
    local t = nil
    if fits(used + credits, w.relief_limit) then
      t = w.relief_at
    elseif reset_at ~= nil then
      t = math.max(reset_at, w.relief_at)
    end
    if t ~= nil and (best == nil or t < best) then best = t end
  end
  if best == nil then return false end
  return math.max(best - now, TIME_SLACK_S)
end

local refused, retry = '', 0
local function worse(name, wait)
  if refused == '' then
    refused, retry = name, wait
  elseif retry == false then
    return
  elseif wait == false or wait > retry then
    refused, retry = name, wait
  end
end

for i, b in ipairs(buckets) do
  local wait = bucket_wait(b)
  if wait ~= 0 then worse('b' .. i, wait) end
end
for i, w in ipairs(windows) do
  local wait = window_wait(w)
  if wait ~= 0 then worse('w' .. i, wait) end
end

local out = {}
if refused ~= '' then
  out[1], out[2] = 0, refused
  if retry == false then out[3] = '' else out[3] = fmt(retry) end
  for i, b in ipairs(buckets) do out[#out + 1] = fmt(num(b.key, now)) end
  for i, w in ipairs(windows) do
    local used, reset_at = open_usage(w, now)
    out[#out + 1] = fmt(used)
    out[#out + 1] = reset_at and fmt(reset_at) or ''
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
  flush()
  return out
end

-- From here on, numbers the caller sent are reused as the strings it sent, and each computed
-- number is formatted once: string.format is a large share of this script's cost.
local bparts, wparts = {}, {}
for i, b in ipairs(buckets) do
  add_to_bucket(b.key, b.cost, b.interval, now)
  bparts[i] = b.key .. ',' .. b.cost_s .. ',' .. b.interval_s
end
out[1], out[2], out[3] = 1, '', ''
for _, b in ipairs(buckets) do out[#out + 1] = cache[b.key] end
for i, w in ipairs(windows) do
  local period, finish, period_s = charge_current(w, credits, now)
  local finish_s = fmt(finish)
  local rolling = 0
  if w.mode == 'r' then
    rolling = 1
    period_s = fmt(period)
    local used, reset_at = open_usage(w, now)
    out[#out + 1] = fmt(used)
    out[#out + 1] = fmt(reset_at)
  else
    out[#out + 1] = cache[w.u]
    out[#out + 1] = finish_s
  end
  out[#out + 1] = period_s
  out[#out + 1] = finish_s
  wparts[i] = w.key .. ',' .. rolling .. ',' .. ARGV[6] .. ',' .. period_s .. ',' .. finish_s
end
hset('r:' .. rid, ARGV[3] .. '|' .. table.concat(bparts, ';') .. '|' .. table.concat(wparts, ';'))
local due = num('dl', nil)
if due == nil or deadline < due then hset('dl', ARGV[3]) end
flush()
touch(ttl)
return out
