-- Release a session's address at once. KEYS: leases, owner, byowner, next. ARGV: owner.
local ip = redis.call('HGET', KEYS[3], ARGV[1])
if not ip then return false end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[2], ip)
redis.call('ZADD', KEYS[1], 0, ip)
return ip
