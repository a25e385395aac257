-- ip_release.lua: release a session's address at once.
-- KEYS: leases, owner_of, address_of, next_unused
-- ARGV: owner
-- Reply: the address released, or false (none held)
--
-- The keys are ip_adopt.lua's.
local leases, owner_of, address_of, next_unused = unpack(KEYS)
local owner = unpack(ARGV)
local ip = redis.call('HGET', address_of, owner)
if not ip then return false end
redis.call('HDEL', address_of, owner)
redis.call('HDEL', owner_of, ip)
redis.call('ZADD', leases, 0, ip)
return ip
