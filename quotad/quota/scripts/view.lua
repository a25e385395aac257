-- view.lua: a contract's pool by bucket (after lazy maintenance).
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp
-- Reply: {'unknown'} | {'ok', plan, start_day, buckets...}
--
-- buckets: five values a bucket: id, kind, size, left, expiry.
local contract, buckets, expiries = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp = unpack(ARGV)  -- read by maintain() (_lib.lua)
if not maintain() then return {'unknown'} end
local c = redis.call('HMGET', contract, 'plan', 'start')
local out = {'ok', c[1], c[2]}
for _, id in ipairs(redis.call('ZRANGE', expiries, 0, -1)) do
  local b = redis.call('HMGET', buckets, id .. '.kind', id .. '.size', id .. '.left', id .. '.exp')
  table.insert(out, id)
  table.insert(out, b[1])
  table.insert(out, b[2])
  table.insert(out, b[3])
  table.insert(out, b[4])
end
return out
