-- Renew a session's lease. KEYS: leases, owner, byowner, next. ARGV: owner, lease expiry.
local ip = redis.call('HGET', KEYS[3], ARGV[1])
if not ip then return false end
redis.call('ZADD', KEYS[1], ARGV[2], ip)
return ip
