-- R-32/R-33: a new card replaces the line's card; held data, usage, switch and sessions stay.
-- KEYS: line. ARGV: iccid, imsi, card type. Returns the old card's iccid and imsi.
local old = redis.call('HMGET', KEYS[1], 'iccid', 'imsi')
if not old[1] then return {'ERR', 'notfound', 'msisdn'} end
redis.call('HSET', KEYS[1], 'iccid', ARGV[1], 'imsi', ARGV[2], 'card_type', ARGV[3])
return {'OK', old[1], old[2]}
