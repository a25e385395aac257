-- Set a line field (coupon switch or status), then return its facts.
-- KEYS: contract, buckets, expiries, line, 3 day-usage keys. ARGV[6..]: field, value.
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local kl = KEYS[4]
local cur = redis.call('HGET', kl, 'status')
if not cur then return {'ERR', 'notfound', 'msisdn'} end
if ARGV[6] == 'status' and cur ~= ARGV[7] then
  if cur == 'terminated' then return {'ERR', 'conflict', 'status'} end
  if ARGV[7] == 'terminated' then redis.call('HINCRBY', KEYS[1], 'nlines', -1) end
end
redis.call('HSET', kl, ARGV[6], ARGV[7])
return {'OK', facts(kl, {KEYS[5], KEYS[6], KEYS[7]})}
