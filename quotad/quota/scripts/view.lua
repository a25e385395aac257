-- A contract's pool by bucket (after lazy maintenance). KEYS: contract, buckets, expiries.
-- Returns contract fields, then id, kind, size, left, expiry per bucket.
if not maintain() then return {'unknown'} end
local c = redis.call('HMGET', KEYS[1], 'plan', 'start')
local out = {'ok', c[1], c[2]}
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local b = redis.call('HMGET', KEYS[2], id .. '.kind', id .. '.size', id .. '.left', id .. '.exp')
  table.insert(out, id)
  table.insert(out, b[1])
  table.insert(out, b[2])
  table.insert(out, b[3])
  table.insert(out, b[4])
end
return out
