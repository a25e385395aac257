-- set_line.lua: set a line field (coupon switch or status), then return its facts.
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, line, day0, day1, day2
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, field, value
-- Reply: {'ERR', kind, field[, 'card_pending']} | {'OK', facts}
local contract, buckets, expiries, line, day0, day1, day2 = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, field, value = unpack(ARGV)
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local l = redis.call('HMGET', line, 'status', 'next_reason')
local cur = l[1]
if not cur then return {'ERR', 'notfound', 'msisdn'} end
if field == 'status' and cur ~= value then
  if cur == 'terminated' then return {'ERR', 'conflict', 'status'} end
  -- R-33: a line suspended for a lost or broken card is resumed by activating its new card.
  if value == 'active' and l[2] and l[2] ~= 'type-change' then
    return {'ERR', 'conflict', 'status', 'card_pending'}
  end
  if value == 'terminated' then redis.call('HINCRBY', contract, 'nlines', -1) end
end
redis.call('HSET', line, field, value)
return {'OK', facts(line, {day0, day1, day2})}
