-- ps_account.lua: an accounting report of a public-safety line (R-63, R-71): never throttled
-- for capacity; the usage is counted once per byte (judge(), _counters.lua) into the group's month
-- (billing, R-65) and the line's day (heavy-use window), both those of the report's event.
-- Prepended: _counters.lua
-- KEYS: line, live, session, event_month, event_day, window...
-- ARGV: sid, status, octets, nas, asid, now, live_ttl, stopped_ttl, usage_ttl, msisdn, event,
--   session_time, rate, slack, max_age, gw
-- Reply: {'unknown'} | {outcome, added, window_bytes, speed, fresh}
--
-- event_month and event_day are the usage keys of the report's event month and day; window the
-- heavy-use window's day keys (today first). The ARGV are account.lua's of the same names.
-- 'unknown': not a public-safety line.
local line, live, session, event_month, event_day = unpack(KEYS)
local sid, status, octets, nas, asid, now, live_ttl, stopped_ttl, usage_ttl, msisdn, event, session_time, rate,
  slack, max_age, gw = unpack(ARGV)
status, octets, rate, slack, max_age = tonumber(status), tonumber(octets), tonumber(rate), tonumber(slack),
  tonumber(max_age)
local event_time = tonumber(event)
local l = redis.call('HMGET', line, 'ps', 'group', 'speed', 'ipv4')
if l[1] ~= '1' then return {'unknown'} end
local function reply(outcome, added, fresh)
  local used = 0
  for i = 6, #KEYS do used = used + tonumber(redis.call('HGET', KEYS[i], 'high') or '0') end
  return {outcome, string.format('%.0f', added), string.format('%.0f', used), l[3] or '', fresh and 1 or 0}
end
if status ~= 1 and status ~= 2 and status ~= 3 then return reply('counted', 0, false) end
local sess = redis.call('HMGET', session, 'stopped', 'octets', 'chg', 'at')
local outcome, added, charge, fresh, chg = judge(sess, status, octets, 0, event_time, session_time, rate, slack, max_age)
if outcome ~= 'counted' then return reply(outcome, 0, false) end
if fresh then
  redis.call('DEL', session)
  redis.call('HSET', session, 'started', now, 'nas', nas, 'imsi', '', 'stopped', '0', 'ip', l[4], 'gw', gw)
end
redis.call('HSET', session, 'octets', string.format('%.0f', octets), 'chg', string.format('%.0f', chg), 'at', event,
  'rep', '1')
if asid ~= '' and (fresh or status == 1) then redis.call('HSET', session, 'asid', asid) end
if status == 2 then
  redis.call('HSET', session, 'stopped', '1')
  redis.call('SREM', live, sid)
  redis.call('EXPIRE', session, stopped_ttl)
else
  redis.call('SADD', live, sid)
  redis.call('EXPIRE', session, live_ttl)
end
if charge > 0 then
  local a = string.format('%.0f', charge)
  redis.call('HINCRBY', event_month, 'g:' .. l[2], a)
  redis.call('HINCRBY', event_month, 'l:' .. msisdn, a)
  redis.call('HINCRBY', event_day, 'high', a)
  redis.call('EXPIRE', event_day, usage_ttl)
end
return reply('counted', added, fresh)
