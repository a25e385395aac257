-- drop_placeholder.lua: forget the session an attach recorded when accounting turned out to name
-- it otherwise (the gateway sent no Acct-Session-Id at attach and does not echo Class): the
-- accounting session took over its address. Only a session that never had a report is dropped.
-- KEYS: live, session
-- ARGV: sid
-- Reply: the dropped session's gateway ('' if none), or false
local live, session = unpack(KEYS)
local sid = unpack(ARGV)
local rec = redis.call('HMGET', session, 'stopped', 'rep', 'gw')
if rec[1] ~= '0' or rec[2] then return false end
redis.call('DEL', session)
redis.call('SREM', live, sid)
return rec[3] or ''
