-- release: ARGV = now, reservation id; returns 1 if an open reservation was undone, else 0
local now = tonumber(ARGV[1])
local rid = ARGV[2]
preload({'dl', 'r:' .. rid})
sweep(now)
local record = hget('r:' .. rid)
if not record then
  flush()
  return 0
end
undo(record, now)
hdel('r:' .. rid)
flush()
return 1
