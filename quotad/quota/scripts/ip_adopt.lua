-- A session's first report names an address another session of its line holds: the attach that
-- leased it named the session otherwise (the gateway sent no Acct-Session-Id at attach and does
-- not echo Class), so the reporting session takes the lease over.
-- KEYS: leases, owner, byowner, next. ARGV: owner, lease expiry, address (int), the owner prefix
-- of the session's line ("<contract>\t<msisdn>\t").
-- Reply: the previous owner, or false (the address is free, another line's, or the owner's own).
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return false end
local old = redis.call('HGET', KEYS[2], ARGV[3])
if not old or old == ARGV[1] or string.sub(old, 1, #ARGV[4]) ~= ARGV[4] then return false end
redis.call('HDEL', KEYS[3], old)
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
return old
