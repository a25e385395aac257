-- ip_adopt.lua: a session's first report names an address another session of its line holds:
-- the attach that leased it named the session otherwise (the gateway sent no Acct-Session-Id at
-- attach and does not echo Class), so the reporting session takes the lease over.
-- KEYS: leases, owner_of, address_of, next_unused
-- ARGV: owner, expiry, address, line_prefix
-- Reply: the previous owner, or false (the address is free, another line's, or the owner's own)
--
-- The IP pool's keys (every ip_*.lua): leases, a zset of addresses by lease expiry; owner_of,
-- address → owner; address_of, owner → address; next_unused, the count of addresses ever handed
-- out. address is an integer; line_prefix the owner prefix of the session's line
-- ("<contract>\t<msisdn>\t").
local leases, owner_of, address_of, next_unused = unpack(KEYS)
local owner, expiry, address, line_prefix = unpack(ARGV)
if redis.call('HEXISTS', address_of, owner) == 1 then return false end
local old = redis.call('HGET', owner_of, address)
if not old or old == owner or string.sub(old, 1, #line_prefix) ~= line_prefix then return false end
redis.call('HDEL', address_of, old)
redis.call('HSET', owner_of, address, owner)
redis.call('HSET', address_of, owner, address)
redis.call('ZADD', leases, expiry, address)
return old
