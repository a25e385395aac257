-- An accounting report of a consumer line (R-16, R-17, R-22, R-23, R-71).
-- KEYS: contract, buckets, expiries (_lib.lua), line, live set, session, the 3 window day-usage
--   keys (today first), the day-usage key of the report's event day.
-- ARGV: now, month, previous month, their bundle expiries (_lib.lua), then
--   6 session id, 7 status type, 8 cumulative octets, 9 cumulative zero-rated octets, 10 nas ip,
--   11 slice bytes, 12 live-session ttl, 13 stopped-session ttl, 14 day-usage ttl, 15 rate limit
--   (bytes/s), 16 slack (bytes), 17 oldest report age (s), 18 framed ip (''), 19 the gateway's
--   Acct-Session-Id (''), 20 event time, 21 Acct-Session-Time (''), 22 gateway ('').
-- Reply: {'unknown'}, or {outcome, added, debited, low_added, overrun, granted, facts, fresh}
--   where outcome is one of judge()'s (_counters.lua); only 'counted' writes anything.
local sid, status, octets, exempt, nas = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local slice, live_ttl, stopped_ttl, usage_ttl = tonumber(ARGV[11]), ARGV[12], ARGV[13], ARGV[14]
local rate, slack, max_age = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local framed, asid, event, session_time, gw = ARGV[18], ARGV[19], tonumber(ARGV[20]), ARGV[21], ARGV[22]
local kl, klive, ks, kevent = KEYS[4], KEYS[5], KEYS[6], KEYS[10]
local days = {KEYS[7], KEYS[8], KEYS[9]}

local plan = maintain()
if not plan then return {'unknown'} end
local l = redis.call('HMGET', kl, 'status', 'held', 'speed', 'coupon')
if not l[1] then return {'unknown'} end
local held = num(l[2])
local function reply(outcome, added, debited, low, over, granted, fresh)
  return {outcome, s(added), s(debited), s(low), s(over), s(granted), facts_of(plan, l[1], l[4], held, l[3], days),
    fresh and 1 or 0}
end
if status ~= 1 and status ~= 2 and status ~= 3 then return reply('counted', 0, 0, 0, 0, 0, false) end

local sess = redis.call('HMGET', ks, 'stopped', 'octets', 'chg', 'at', 'ttl_at', 'rep')
local outcome, added, charge, fresh, chg = judge(sess, status, octets, exempt, event, session_time, rate, slack,
  max_age)
-- Nothing else is written for a report not counted, a Stop included: one dated before the
-- session's latest report may be a resend from an earlier session under the same id, and ending
-- the live one would lose what it reports next.
if outcome ~= 'counted' then return reply(outcome, 0, 0, 0, 0, 0, false) end

-- The session's fields in one write.
local put = {'octets', s(octets), 'chg', s(chg), 'at', ARGV[20]}
if fresh or not sess[6] then put[#put + 1] = 'rep'; put[#put + 1] = '1' end  -- it has had a report
if fresh then
  redis.call('DEL', ks)
  for _, f in ipairs({'started', ARGV[1], 'nas', nas, 'imsi', '', 'gw', gw, 'stopped', '0'}) do put[#put + 1] = f end
end
if status == 2 then put[#put + 1] = 'stopped'; put[#put + 1] = '1' end
if framed ~= '' then put[#put + 1] = 'ip'; put[#put + 1] = framed end
if asid ~= '' and (fresh or status == 1) then put[#put + 1] = 'asid'; put[#put + 1] = asid end
local live_ttl_due = status ~= 2 and (fresh or ttl_due(sess[5], live_ttl))
if live_ttl_due then put[#put + 1] = 'ttl_at'; put[#put + 1] = ARGV[1] end
redis.call('HSET', ks, unpack(put))
if status == 2 then
  redis.call('SREM', klive, sid)
  redis.call('EXPIRE', ks, stopped_ttl)
else
  if fresh then redis.call('SADD', klive, sid) end  -- a live one is in the set already
  if live_ttl_due then redis.call('EXPIRE', ks, live_ttl) end
end
-- R-16 / R-17: where the usage goes depends on the line's speed class; it is booked on the
-- Japan day of the event (RFC 2866 Acct-Delay-Time, Event-Timestamp).
local debited, low_added, overrun, granted = 0, 0, 0, 0
if charge > 0 then
  local total
  if l[3] == 'low' or l[3] == 'restricted' then
    low_added = charge
    total = redis.call('HINCRBY', kevent, 'low', s(charge))
  else
    if charge > held then
      granted = draw(math.ceil((charge - held) / slice) * slice)
      held = held + granted
    end
    debited = math.min(charge, held)
    overrun = charge - debited
    held = held - debited
    redis.call('HSET', kl, 'held', s(held))
    if overrun > 0 then redis.call('HINCRBY', kl, 'overrun', s(overrun)) end
    total = redis.call('HINCRBY', kevent, 'high', s(charge))
  end
  -- The day's usage key gets its TTL with its first usage (the day is over long before it ends).
  if total == charge then redis.call('EXPIRE', kevent, usage_ttl) end
end
return reply('counted', added, debited, low_added, overrun, granted, fresh)
