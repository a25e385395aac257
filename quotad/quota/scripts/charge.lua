-- charge.lua: buy coupons (R-11).
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, charges
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, units, max_units, unit_bytes,
--   expiry, entry, cutoff
-- Reply: {'ERR', kind, field[, units used]} | {'OK', bucket_id, size, units_used}
--
-- charges is the contract's charge history (zset by instant); max_units a calendar month's limit;
-- expiry the coupon's; entry the history entry (JSON); cutoff the instant before which history
-- is dropped.
local contract, buckets, expiries, charges = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, units, max_units, unit_bytes, expiry, entry,
  cutoff = unpack(ARGV)
units, max_units = tonumber(units), tonumber(max_units)
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local field = 'units:' .. month
local used = num(redis.call('HGET', contract, field))
if used + units > max_units then return {'ERR', 'limit', 'units', used} end
redis.call('HINCRBY', contract, field, units)
local size = units * tonumber(unit_bytes)
local id = new_bucket(contract, buckets, expiries, 'coupon', size, expiry)
redis.call('ZADD', charges, now, id .. '|' .. entry)
redis.call('ZREMRANGEBYSCORE', charges, '-inf', '(' .. cutoff)
return {'OK', id, size, used + units}
