-- R-32/R-33: a new card for a line, pending until activated. KEYS: contract, buckets, expiries,
-- line, 3 day-usage keys. ARGV[6..]: iccid, imsi, card type, reason, suspend (1: lost or broken).
-- The new card's index keys were claimed by the caller. A lost or broken card's line is
-- suspended until the new card is activated (R-33); a card type change keeps the old card
-- working until then (R-32).
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local kl = KEYS[4]
local l = redis.call('HMGET', kl, 'status', 'next_iccid')
if not l[1] then return {'ERR', 'notfound', 'msisdn'} end
if l[1] == 'terminated' then return {'ERR', 'conflict', 'status'} end
if l[2] then return {'ERR', 'conflict', 'iccid', l[2]} end
redis.call('HSET', kl, 'next_iccid', ARGV[6], 'next_imsi', ARGV[7], 'next_card_type', ARGV[8],
  'next_reason', ARGV[9])
if ARGV[10] == '1' then redis.call('HSET', kl, 'status', 'suspended') end
return {'OK', facts(kl, {KEYS[5], KEYS[6], KEYS[7]})}
