-- R-32/R-33: the line's pending card becomes its card; from now on the old card cannot attach.
-- KEYS: contract, buckets, expiries, line, 3 day-usage keys. ARGV[6..]: iccid of the new card.
-- Held data, usage history, switch and speed stay with the line. A line suspended for a lost
-- or broken card is resumed on the new one (R-33).
-- Returns {'OK', new card, old card, reason, facts} (a card = iccid, imsi, type), or
-- {'SAME', card, {}, '', facts} when the card is already the line's (a repeated activation).
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local kl = KEYS[4]
local days = {KEYS[5], KEYS[6], KEYS[7]}
local l = redis.call('HMGET', kl, 'status', 'iccid', 'imsi', 'card_type', 'next_iccid', 'next_imsi',
  'next_card_type', 'next_reason')
if not l[1] then return {'ERR', 'notfound', 'msisdn'} end
local old = {l[2], l[3], l[4]}
if l[5] ~= ARGV[6] then
  if l[2] == ARGV[6] then return {'SAME', old, {}, '', facts(kl, days)} end
  return {'ERR', 'notfound', 'iccid'}
end
if l[1] == 'terminated' then return {'ERR', 'conflict', 'status'} end
redis.call('HSET', kl, 'iccid', l[5], 'imsi', l[6], 'card_type', l[7], 'card_since', ARGV[1])
redis.call('HDEL', kl, 'next_iccid', 'next_imsi', 'next_card_type', 'next_reason')
if l[8] ~= 'type-change' then redis.call('HSET', kl, 'status', 'active') end
return {'OK', {l[5], l[6], l[7]}, old, l[8], facts(kl, days)}
