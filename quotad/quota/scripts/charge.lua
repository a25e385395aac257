-- R-11: buy coupons. KEYS: contract, buckets, expiries, charge history.
-- ARGV[6..]: units, max units per month, bytes per unit, expiry, history entry (json),
-- history cutoff instant.
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local units, max_units = tonumber(ARGV[6]), tonumber(ARGV[7])
local field = 'units:' .. ARGV[2]
local used = num(redis.call('HGET', KEYS[1], field))
if used + units > max_units then return {'ERR', 'limit', 'units', used} end
redis.call('HINCRBY', KEYS[1], field, units)
local size = units * tonumber(ARGV[8])
local id = new_bucket(KEYS[1], KEYS[2], KEYS[3], 'coupon', size, ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[1], id .. '|' .. ARGV[10])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[11])
return {'OK', id, size, used + units}
