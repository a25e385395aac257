-- An accounting report of a public-safety line (R-63, R-71): never throttled for capacity; the
-- usage is counted once per byte (judge(), _counters.lua) into the group's month (billing, R-65)
-- and the line's day (heavy-use window), both those of the report's event.
-- KEYS: line, live set, session, the event month's usage hash, the event day's usage, then the
--   heavy-use window's day keys (today first).
-- ARGV: 1 session id, 2 status type, 3 cumulative octets, 4 nas ip, 5 the gateway's
--   Acct-Session-Id (''), 6 now, 7 live ttl, 8 stopped ttl, 9 day-usage ttl, 10 msisdn, 11 event
--   time, 12 Acct-Session-Time (''), 13 rate limit (bytes/s), 14 slack (bytes), 15 oldest report
--   age (s), 16 gateway ('').
-- Reply: {'unknown'} (not a public-safety line), or {outcome, added, window usage, speed, fresh}.
local sid, status, octets, nas, asid, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local live_ttl, stopped_ttl, usage_ttl, msisdn = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local event, session_time, rate, slack, max_age = tonumber(ARGV[11]), ARGV[12], tonumber(ARGV[13]),
  tonumber(ARGV[14]), tonumber(ARGV[15])
local kl, klive, ks, kmonth, kday = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local l = redis.call('HMGET', kl, 'ps', 'group', 'speed', 'ipv4')
if l[1] ~= '1' then return {'unknown'} end
local function reply(outcome, added, fresh)
  local used = 0
  for i = 6, #KEYS do used = used + tonumber(redis.call('HGET', KEYS[i], 'high') or '0') end
  return {outcome, string.format('%.0f', added), string.format('%.0f', used), l[3] or '', fresh and 1 or 0}
end
if status ~= 1 and status ~= 2 and status ~= 3 then return reply('counted', 0, false) end
local sess = redis.call('HMGET', ks, 'stopped', 'octets', 'chg', 'at')
local outcome, added, charge, fresh, chg = judge(sess, status, octets, 0, event, session_time, rate, slack, max_age)
if outcome ~= 'counted' then return reply(outcome, 0, false) end
if fresh then
  redis.call('DEL', ks)
  redis.call('HSET', ks, 'started', now, 'nas', nas, 'imsi', '', 'stopped', '0', 'ip', l[4], 'gw', ARGV[16])
end
redis.call('HSET', ks, 'octets', string.format('%.0f', octets), 'chg', string.format('%.0f', chg), 'at', ARGV[11],
  'rep', '1')
if asid ~= '' and (fresh or status == 1) then redis.call('HSET', ks, 'asid', asid) end
if status == 2 then
  redis.call('HSET', ks, 'stopped', '1')
  redis.call('SREM', klive, sid)
  redis.call('EXPIRE', ks, stopped_ttl)
else
  redis.call('SADD', klive, sid)
  redis.call('EXPIRE', ks, live_ttl)
end
if charge > 0 then
  local a = string.format('%.0f', charge)
  redis.call('HINCRBY', kmonth, 'g:' .. l[2], a)
  redis.call('HINCRBY', kmonth, 'l:' .. msisdn, a)
  redis.call('HINCRBY', kday, 'high', a)
  redis.call('EXPIRE', kday, usage_ttl)
end
return reply('counted', added, fresh)
