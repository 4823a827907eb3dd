-- reconcile: ARGV = now, reservation id, deadline, bucket count, window count, actual credits,
--   key ttl, then per bucket charge: key, interval, reserved tokens, actual tokens
--   then per window charge: key, rolling (0|1), reserved credits, period, end,
--     and the window open now: mode (s|a|r|- if gone), length, start, end
-- returns 1 if applied, 0 if the reservation was already settled
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local deadline = tonumber(ARGV[3])
local nb, nw = tonumber(ARGV[4]), tonumber(ARGV[5])
local actual_credits = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])

local fields = {'dl', 'r:' .. rid}
local a = 8
for i = 1, nb do fields[#fields + 1] = ARGV[a + 4 * (i - 1)] end
for i = 1, nw do window_fields(fields, ARGV[a + 4 * nb + 9 * (i - 1)]) end
preload(fields)

sweep(now)
local held = hdel('r:' .. rid)
if (not held) and now < deadline then
  flush()
  return 0
end

for i = 1, nb do
  local key, interval = ARGV[a], tonumber(ARGV[a + 1])
  local reserved, actual = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local delta = actual
  if held then delta = actual - reserved end
  if delta ~= 0 then add_to_bucket(key, delta, interval, now) end
  a = a + 4
end
for i = 1, nw do
  local key, rolling = ARGV[a], tonumber(ARGV[a + 1])
  local reserved, period, finish = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local mode = ARGV[a + 5]
  local delta = actual_credits
  if held then delta = actual_credits - reserved end
  if period_is_open(key, rolling, period, finish, now) then
    add_to_period(key, rolling, period, delta)
  elseif delta > 0 and mode ~= '-' then
    charge_current({key = key, mode = mode, length = tonumber(ARGV[a + 6]),
                    start = tonumber(ARGV[a + 7]), finish = tonumber(ARGV[a + 8]),
                    s = key .. ':s', u = key .. ':u'}, delta, now)
  end
  a = a + 9
end
flush()
-- no touch(): the keys' expiry was set by the admission, days past any reservation's deadline
return 1
