-- ip_renew.lua: renew a session's lease.
-- KEYS: leases, owner_of, address_of, next_unused
-- ARGV: owner, expiry
-- Reply: the address, or false (none held)
--
-- The keys are ip_adopt.lua's.
local leases, owner_of, address_of, next_unused = unpack(KEYS)
local owner, expiry = unpack(ARGV)
local ip = redis.call('HGET', address_of, owner)
if not ip then return false end
redis.call('ZADD', leases, expiry, ip)
return ip
