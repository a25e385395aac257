-- Add a line to a contract. KEYS: contract, buckets, expiries, lines set, line hash.
-- ARGV[6..]: msisdn, iccid, imsi, card type, voice (1/0).
-- The index keys were claimed by the caller; this only checks what the contract knows.
local c = redis.call('HMGET', KEYS[1], 'nlines', 'max_lines')
if not c[2] then return {'ERR', 'notfound', 'contract_id'} end
if redis.call('SISMEMBER', KEYS[4], ARGV[6]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then
  return {'ERR', 'conflict', 'msisdn'}
end
if num(c[1]) >= num(c[2]) then return {'ERR', 'limit', 'msisdn'} end
redis.call('HSET', KEYS[5], 'iccid', ARGV[7], 'imsi', ARGV[8], 'card_type', ARGV[9],
  'voice', ARGV[10], 'status', 'active', 'coupon', '1', 'held', 0, 'speed', '', 'overrun', 0,
  'added', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[6])
redis.call('HINCRBY', KEYS[1], 'nlines', 1)
return {'OK'}
