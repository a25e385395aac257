-- ip_alloc.lua: lease a private address to a session.
-- KEYS: leases, owner_of, address_of, next_unused
-- ARGV: owner, now, expiry, first, count
-- Reply: the address (an integer, as a string), or false when the range is exhausted
--
-- The keys are ip_adopt.lua's. first is the range's first usable address, count how many there are.
local leases, owner_of, address_of, next_unused = unpack(KEYS)
local owner, now, expiry, first, count = unpack(ARGV)
local have = redis.call('HGET', address_of, owner)
if have then
  redis.call('ZADD', leases, expiry, have)
  return have
end
local ip
local free = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1)
if #free > 0 then
  ip = free[1]
  local old = redis.call('HGET', owner_of, ip)
  if old then redis.call('HDEL', address_of, old) end
else
  local n = tonumber(redis.call('GET', next_unused) or '0')
  if n >= tonumber(count) then return false end
  redis.call('SET', next_unused, n + 1)
  ip = string.format('%.0f', tonumber(first) + n)
end
redis.call('ZADD', leases, expiry, ip)
redis.call('HSET', owner_of, ip, owner)
redis.call('HSET', address_of, owner, ip)
return ip
