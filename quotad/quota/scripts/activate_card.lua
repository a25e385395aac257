-- activate_card.lua: the line's pending card becomes its card; from now on the old card cannot
-- attach (R-32, R-33).
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, line, day0, day1, day2
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, iccid
-- Reply: {'ERR', kind, field} | {'OK', card, old_card, reason, facts} | {'SAME', card, {}, '', facts}
--
-- iccid is the new card's; a card is {iccid, imsi, type}. 'SAME': the card is already the line's
-- (a repeated activation). Held data, usage history, switch and speed stay with the line. A line
-- suspended for a lost or broken card is resumed on the new one (R-33).
local contract, buckets, expiries, line, day0, day1, day2 = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, iccid = unpack(ARGV)
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local days = {day0, day1, day2}
local l = redis.call('HMGET', line, 'status', 'iccid', 'imsi', 'card_type', 'next_iccid', 'next_imsi',
  'next_card_type', 'next_reason')
if not l[1] then return {'ERR', 'notfound', 'msisdn'} end
local old = {l[2], l[3], l[4]}
if l[5] ~= iccid then
  if l[2] == iccid then return {'SAME', old, {}, '', facts(line, days)} end
  return {'ERR', 'notfound', 'iccid'}
end
if l[1] == 'terminated' then return {'ERR', 'conflict', 'status'} end
redis.call('HSET', line, 'iccid', l[5], 'imsi', l[6], 'card_type', l[7], 'card_since', now)
redis.call('HDEL', line, 'next_iccid', 'next_imsi', 'next_card_type', 'next_reason')
if l[8] ~= 'type-change' then redis.call('HSET', line, 'status', 'active') end
return {'OK', {l[5], l[6], l[7]}, old, l[8], facts(line, days)}
