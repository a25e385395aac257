-- account.lua: an accounting report of a consumer line (R-16, R-17, R-22, R-23, R-71).
-- Prepended: _lib.lua, _counters.lua
-- KEYS: contract, buckets, expiries, line, live, day0, day1, day2, session, event_day
-- Constants: slice, live_ttl, stopped_ttl, usage_ttl, rate, slack, max_age
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, nas, gw, sid, status, octets, exempt,
--   framed, asid, event, session_time
-- Reply: {'unknown'} | {outcome, added, debited, low_added, overrun, granted, facts, fresh}
--
-- day0..day2 are the 3-day window's usage keys (today first), event_day the usage key of the
-- report's event day. The constants are the process's settings, set before the script when it is
-- registered (quota/lua.py constants): slice (bytes drawn from the pool at a time), the TTLs (s)
-- of a live and an ended session and of a day's usage, rate the plausible rate (bytes/s) and
-- slack (bytes) over it, max_age the oldest report counted (s). status is the Acct-Status-Type;
-- octets and exempt the cumulative octets and zero-rated octets; framed, asid, session_time, gw:
-- Framed-IP-Address, Acct-Session-Id, Acct-Session-Time, gateway ('' when absent); event the
-- report's event time.
-- The outcome is one of judge()'s (_counters.lua); only 'counted' writes anything.
local contract, buckets, expiries, line, live, day0, day1, day2, session, event_day = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, nas, gw, sid, status, octets, exempt, framed, asid, event,
  session_time = unpack(ARGV)
status, octets, exempt = tonumber(status), tonumber(octets), tonumber(exempt)
local event_time = tonumber(event)
local days = {day0, day1, day2}

local plan = maintain()
if not plan then return {'unknown'} end
local l = redis.call('HMGET', line, 'status', 'held', 'speed', 'coupon')
if not l[1] then return {'unknown'} end
local held = num(l[2])
local function reply(outcome, added, debited, low, over, granted, fresh)
  return {outcome, added, debited, low, over, granted, request_facts(plan, l[1], l[4], held, l[3], days),
    fresh and 1 or 0}
end
if status ~= 1 and status ~= 2 and status ~= 3 then return reply('counted', 0, 0, 0, 0, 0, false) end

local sess = redis.call('HMGET', session, 'stopped', 'octets', 'chg', 'at', 'ttl_at', 'rep')
local outcome, added, charge, fresh, chg = judge(sess, status, octets, exempt, event_time, session_time, rate, slack,
  max_age)
-- Nothing else is written for a report not counted, a Stop included: one dated before the
-- session's latest report may be a resend from an earlier session under the same id, and ending
-- the live one would lose what it reports next.
if outcome ~= 'counted' then return reply(outcome, 0, 0, 0, 0, 0, false) end

-- The session's fields in one write.
local put = {'octets', octets, 'chg', chg, 'at', event}
if fresh or not sess[6] then put[#put + 1] = 'rep'; put[#put + 1] = '1' end  -- it has had a report
if fresh then
  -- An ended session's record goes before the new one is written; a session first seen has none
  -- (every script that makes a record writes its 'stopped': attach.lua, this one, end_session.lua).
  if sess[1] then redis.call('DEL', session) end
  local n = #put
  put[n + 1], put[n + 2], put[n + 3], put[n + 4], put[n + 5] = 'started', now, 'nas', nas, 'imsi'
  put[n + 6], put[n + 7], put[n + 8], put[n + 9], put[n + 10] = '', 'gw', gw, 'stopped', '0'
end
if status == 2 then put[#put + 1] = 'stopped'; put[#put + 1] = '1' end
if framed ~= '' then put[#put + 1] = 'ip'; put[#put + 1] = framed end
if asid ~= '' and (fresh or status == 1) then put[#put + 1] = 'asid'; put[#put + 1] = asid end
local live_ttl_due = status ~= 2 and (fresh or ttl_due(sess[5], live_ttl))
if live_ttl_due then put[#put + 1] = 'ttl_at'; put[#put + 1] = now end
redis.call('HSET', session, unpack(put))
if status == 2 then
  redis.call('SREM', live, sid)
  redis.call('EXPIRE', session, stopped_ttl)
else
  if fresh then redis.call('SADD', live, sid) end  -- a live one is in the set already
  if live_ttl_due then redis.call('EXPIRE', session, live_ttl) end
end
-- R-16 / R-17: where the usage goes depends on the line's speed class; it is booked on the
-- Japan day of the event (RFC 2866 Acct-Delay-Time, Event-Timestamp).
local debited, low_added, overrun, granted = 0, 0, 0, 0
if charge > 0 then
  local total
  if l[3] == 'low' or l[3] == 'restricted' then
    low_added = charge
    total = redis.call('HINCRBY', event_day, 'low', charge)
  else
    if charge > held then
      granted = draw(math.ceil((charge - held) / slice) * slice)
      held = held + granted
    end
    debited = math.min(charge, held)
    overrun = charge - debited
    held = held - debited
    redis.call('HSET', line, 'held', held)
    if overrun > 0 then redis.call('HINCRBY', line, 'overrun', overrun) end
    total = redis.call('HINCRBY', event_day, 'high', charge)
  end
  -- The day's usage key gets its TTL with its first usage (the day is over long before it ends).
  if total == charge then redis.call('EXPIRE', event_day, usage_ttl) end
end
return reply('counted', added, debited, low_added, overrun, granted, fresh)
