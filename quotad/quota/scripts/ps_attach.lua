-- A public-safety SIM attaches (R-3, R-62, R-63). Reads only.
-- KEYS[1]: line hash; KEYS[2..]: day-usage keys of the heavy-use window.
-- ARGV: today (YYYYMMDD), imsi ('' if none).
-- Returns {'ok', ipv4, ipv6 prefix, window usage, speed} or {reason}.
local l = redis.call('HMGET', KEYS[1], 'ps', 'imsi', 'starts', 'ends', 'ipv4', 'ipv6', 'speed')
if l[1] ~= '1' then return {'unknown_sim'} end
if ARGV[2] ~= '' and ARGV[2] ~= l[2] then return {'card-replaced'} end
if l[3] > ARGV[1] then return {'not-started'} end
if l[4] ~= '' and l[4] < ARGV[1] then return {'terminated'} end
local used = 0
for i = 2, #KEYS do used = used + tonumber(redis.call('HGET', KEYS[i], 'high') or '0') end
return {'ok', l[5], l[6], string.format('%.0f', used), l[7] or ''}
