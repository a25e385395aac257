-- End a live session as a Stop would, counting nothing more: its gateway restarted
-- (Accounting-On/Off) or said it has no such session (CoA NAK, Error-Cause 503).
-- KEYS: live set, session. ARGV: session id, stopped-session ttl, now.
-- Reply: the session's gateway ('' if none) if it was live, else false.
local rec = redis.call('HMGET', KEYS[2], 'stopped', 'gw')
if rec[1] ~= '0' then return false end
-- Its end is dated now: a report resent from before it is late ('ended', _counters.lua).
redis.call('HSET', KEYS[2], 'stopped', '1', 'at', ARGV[3])
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return rec[2] or ''
