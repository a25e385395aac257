-- end_session.lua: end a live session as a Stop would, counting nothing more: its gateway
-- restarted (Accounting-On/Off) or said it has no such session (CoA NAK, Error-Cause 503).
-- KEYS: live, session
-- ARGV: sid, stopped_ttl, now
-- Reply: the session's gateway ('' if none) if it was live, else false
local live, session = unpack(KEYS)
local sid, stopped_ttl, now = unpack(ARGV)
local rec = redis.call('HMGET', session, 'stopped', 'gw')
if rec[1] ~= '0' then return false end
-- Its end is dated now: a report resent from before it is late ('ended', _counters.lua).
redis.call('HSET', session, 'stopped', '1', 'at', now)
redis.call('SREM', live, sid)
redis.call('EXPIRE', session, stopped_ttl)
return rec[2] or ''
