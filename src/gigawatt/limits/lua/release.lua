-- release: ARGV = now, reservation id; returns 1 if an open reservation was undone, else 0
local now = tonumber(ARGV[1])
local rid = ARGV[2]
sweep(now)
local record = redis.call('HGET', H, 'r:' .. rid)
if not record then return 0 end
undo(record, now)
redis.call('HDEL', H, 'r:' .. rid)
redis.call('ZREM', DL, rid)
return 1
