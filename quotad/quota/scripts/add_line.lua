-- add_line.lua: add a line to a contract.
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, lines, line
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, msisdn, iccid, imsi, card_type, voice
-- Reply: {'ERR', kind, field} | {'OK'}
--
-- lines is the contract's set of MSISDNs; voice 1/0. The index keys were claimed by the caller;
-- this only checks what the contract knows.
local contract, buckets, expiries, lines, line = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, msisdn, iccid, imsi, card_type, voice = unpack(ARGV)
local c = redis.call('HMGET', contract, 'nlines', 'max_lines')
if not c[2] then return {'ERR', 'notfound', 'contract_id'} end
if redis.call('SISMEMBER', lines, msisdn) == 1 or redis.call('EXISTS', line) == 1 then
  return {'ERR', 'conflict', 'msisdn'}
end
if num(c[1]) >= num(c[2]) then return {'ERR', 'limit', 'msisdn'} end
redis.call('HSET', line, 'iccid', iccid, 'imsi', imsi, 'card_type', card_type, 'voice', voice, 'status', 'active',
  'coupon', '1', 'held', 0, 'speed', '', 'overrun', 0, 'added', now)
redis.call('SADD', lines, msisdn)
redis.call('HINCRBY', contract, 'nlines', 1)
return {'OK'}
