-- Set a line field (coupon switch or status), then return its facts.
-- KEYS: contract, buckets, expiries, line, 3 day-usage keys. ARGV[6..]: field, value.
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local kl = KEYS[4]
local l = redis.call('HMGET', kl, 'status', 'next_reason')
local cur = l[1]
if not cur then return {'ERR', 'notfound', 'msisdn'} end
if ARGV[6] == 'status' and cur ~= ARGV[7] then
  if cur == 'terminated' then return {'ERR', 'conflict', 'status'} end
  -- R-33: a line suspended for a lost or broken card is resumed by activating its new card.
  if ARGV[7] == 'active' and l[2] and l[2] ~= 'type-change' then
    return {'ERR', 'conflict', 'status', 'card-pending'}
  end
  if ARGV[7] == 'terminated' then redis.call('HINCRBY', KEYS[1], 'nlines', -1) end
end
redis.call('HSET', kl, ARGV[6], ARGV[7])
return {'OK', facts(kl, {KEYS[5], KEYS[6], KEYS[7]})}
