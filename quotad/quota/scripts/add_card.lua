-- add_card.lua: a new card for a line, pending until activated (R-32, R-33).
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, line, day0, day1, day2
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, iccid, imsi, card_type, reason, suspend
-- Reply: {'ERR', kind, field[, pending iccid]} | {'OK', facts}
--
-- The new card's index keys were claimed by the caller. suspend is 1 for a lost or broken card:
-- its line is suspended until the new card is activated (R-33); a card type change keeps the
-- old card working until then (R-32).
local contract, buckets, expiries, line, day0, day1, day2 = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, iccid, imsi, card_type, reason, suspend = unpack(ARGV)
if not maintain() then return {'ERR', 'notfound', 'contract_id'} end
local l = redis.call('HMGET', line, 'status', 'next_iccid')
if not l[1] then return {'ERR', 'notfound', 'msisdn'} end
if l[1] == 'terminated' then return {'ERR', 'conflict', 'status'} end
if l[2] then return {'ERR', 'conflict', 'iccid', l[2]} end
redis.call('HSET', line, 'next_iccid', iccid, 'next_imsi', imsi, 'next_card_type', card_type, 'next_reason', reason)
if suspend == '1' then redis.call('HSET', line, 'status', 'suspended') end
return {'OK', facts(line, {day0, day1, day2})}
