-- Lease a private address to a session. KEYS: leases, owner, byowner, next.
-- ARGV: owner, now, lease expiry, first address (int), number of usable addresses.
-- Returns the address (int as string), or false when the range is exhausted.
local have = redis.call('HGET', KEYS[3], ARGV[1])
if have then
  redis.call('ZADD', KEYS[1], ARGV[3], have)
  return have
end
local ip
local free = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1)
if #free > 0 then
  ip = free[1]
  local old = redis.call('HGET', KEYS[2], ip)
  if old then redis.call('HDEL', KEYS[3], old) end
else
  local n = tonumber(redis.call('GET', KEYS[4]) or '0')
  if n >= tonumber(ARGV[5]) then return false end
  redis.call('SET', KEYS[4], n + 1)
  ip = string.format('%.0f', tonumber(ARGV[4]) + n)
end
redis.call('ZADD', KEYS[1], ARGV[3], ip)
redis.call('HSET', KEYS[2], ip, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ip)
return ip
