-- attach.lua: a SIM attaches (R-3, R-12, R-50).
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, line, live, day0, day1, day2, session, spare_session?
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, today, slice, ttl, check_identity,
--   imsi, nas, gw, sid, new_gen, expected_gen, asid, slot, spare
-- Reply: {reason} | {'retry', sid} | {'ok', granted, facts, generation, same, new, sid}
--
-- KEYS and ARGV up to prev_bundle_exp are every contract script's (_lib.lua); day0..day2 are the
-- 3-day window's usage keys, today first. imsi '' when the request has none; check_identity 1/0;
-- new_gen a new session generation; expected_gen the generation the caller expects ('' for
-- none; quota.renewals); today YYYYMMDD; gw and asid the gateway and its Acct-Session-Id ('');
-- slot '' when the request named its session. In the reply, same is 1 when the session is the
-- expected live one, new 1 when its record was made now, sid the session's id.
--
-- An Access-Request that names no session (no Acct-Session-Id, no Class) has a slot instead: its
-- gateway, SIM and APN (aaa.access). The line's field 'slot:<slot>' names the slot's latest
-- session; the request is that session while it is live and has had no accounting report (the
-- gateway asking again), else a new session under spare (key spare_session). sid is the caller's
-- guess of the latest; a wrong guess is answered {'retry', latest}.
--
-- quota/steady.py answers a re-authorization that would change nothing here from reads alone: a
-- new write or refusal in this script (or in _lib.lua's maintain) must be one of its conditions
-- too (tests/integration/test_steady.py compares the two).
local contract, buckets, expiries, line, live, day0, day1, day2, session, spare_session = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, today, slice, ttl, check_identity, imsi, nas, gw, sid,
  new_gen, expected_gen, asid, slot, spare = unpack(ARGV)
slice = tonumber(slice)
local plan, start = maintain()
if not plan then return {'unknown'} end
local days = {day0, day1, day2}
-- The line's fields, and with a slot the slot's latest session (l[8]), in one read.
local l
if slot ~= '' then
  l = redis.call('HMGET', line, 'status', 'imsi', 'coupon', 'held', 'voice', 'next_imsi', 'speed', 'slot:' .. slot)
else
  l = redis.call('HMGET', line, 'status', 'imsi', 'coupon', 'held', 'voice', 'next_imsi', 'speed')
end
if not l[1] then return {'unknown'} end
-- A refusal gives the session's address back (the caller releases it): no process may go on
-- trusting its note of the lease, so the session's generation goes.
local function refuse(reason)
  redis.call('HDEL', session, 'gen')
  return {reason}
end
if l[1] ~= 'active' then return refuse(l[1]) end
-- A contract's lines are in service from its start day (Japan time).
if start and start > today then return refuse('not_started') end
if imsi ~= '' and imsi ~= l[2] then
  -- R-32/R-33: a new card attaches once activated; an old one never again.
  if imsi == l[6] then return refuse('card_pending') end
  return refuse('card_replaced')
end
-- R-50: a voice line attaches only once its contract holder's identity is verified.
if check_identity == '1' and l[5] == '1' and redis.call('HGET', contract, 'identity') ~= 'verified' then
  return refuse('identity_unverified')
end
-- R-3 passed: record the session. The same live session (a re-authorization) keeps its counters;
-- an ended one, or none, starts afresh. A session whose 'stopped' is '0' is in the live set
-- already: every script that writes '0' adds it there.
local sess
if slot ~= '' then
  local latest = l[8]
  if latest and latest ~= sid then return {'retry', latest} end
  if latest then sess = redis.call('HMGET', session, 'stopped', 'nas', 'imsi', 'gen', 'ttl_at', 'rep') end
  if not latest or sess[1] ~= '0' or sess[6] then
    sid, session = spare, spare_session
    redis.call('HSET', line, 'slot:' .. slot, sid)
    sess = redis.call('HMGET', session, 'stopped', 'nas', 'imsi', 'gen', 'ttl_at')
  end
else
  sess = redis.call('HMGET', session, 'stopped', 'nas', 'imsi', 'gen', 'ttl_at')
end
local gen, same, new = sess[4], 0, 0
if sess[1] == false or sess[1] == '1' then
  gen, new = new_gen, 1
  if sess[1] then redis.call('DEL', session) end  -- an ended session's fields go; a new one has none
  local record = {'started', now, 'at', now, 'octets', 0, 'chg', 0, 'stopped', '0', 'nas', nas, 'imsi', imsi,
    'gen', gen, 'ttl_at', now, 'gw', gw}
  if asid ~= '' then record[#record + 1] = 'asid'; record[#record + 1] = asid end
  redis.call('HSET', session, unpack(record))
  redis.call('EXPIRE', session, ttl)
  redis.call('SADD', live, sid)
else
  if gen and gen == expected_gen then same = 1 end
  local put = {}
  if not gen then
    gen = new_gen
    put = {'nas', nas, 'imsi', imsi, 'gen', gen}
  elseif sess[2] ~= nas or sess[3] ~= imsi then
    put = {'nas', nas, 'imsi', imsi}
  end
  if ttl_due(sess[5], ttl) then
    put[#put + 1] = 'ttl_at'; put[#put + 1] = now
    redis.call('EXPIRE', session, ttl)
  end
  if #put > 0 then redis.call('HSET', session, unpack(put)) end
end
-- R-12: a SIM holding less than a slice draws one.
local granted = 0
local held = num(l[4])
if l[3] == '1' and held < slice then
  granted = draw(slice)
  if granted > 0 then
    held = held + granted
    redis.call('HSET', line, 'held', held)
  end
end
return {'ok', granted, request_facts(plan, l[1], l[3], held, l[7], days), gen, same, new, sid}
