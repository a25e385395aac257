-- Forget the session an attach recorded when accounting turned out to name it otherwise (the
-- gateway sent no Acct-Session-Id at attach and does not echo Class): the accounting session took
-- over its address. Only a session that never had a report is dropped.
-- KEYS: live set, session. ARGV: session id.
-- Reply: the dropped session's gateway ('' if none), or false.
local rec = redis.call('HMGET', KEYS[2], 'stopped', 'rep', 'gw')
if rec[1] ~= '0' or rec[2] then return false end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
return rec[3] or ''
