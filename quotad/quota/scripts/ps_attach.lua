-- ps_attach.lua: a public-safety SIM attaches (R-3, R-62, R-63). Reads only.
-- KEYS: line, window...
-- ARGV: today, imsi
-- Reply: {reason} | {'ok', ipv4, ipv6_prefix, window_bytes, speed}
--
-- window is the heavy-use window's day-usage keys; today is YYYYMMDD; imsi '' when none.
local line = unpack(KEYS)
local today, imsi = unpack(ARGV)
local l = redis.call('HMGET', line, 'ps', 'imsi', 'starts', 'ends', 'ipv4', 'ipv6', 'speed')
if l[1] ~= '1' then return {'unknown_sim'} end
if imsi ~= '' and imsi ~= l[2] then return {'card_replaced'} end
if l[3] > today then return {'not_started'} end
if l[4] ~= '' and l[4] < today then return {'terminated'} end
local used = 0
for i = 2, #KEYS do used = used + tonumber(redis.call('HGET', KEYS[i], 'high') or '0') end
return {'ok', l[5], l[6], string.format('%.0f', used), l[7] or ''}
