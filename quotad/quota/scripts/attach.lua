-- A SIM attaches (R-3, R-12, R-50).
-- KEYS: contract, buckets, expiries (_lib.lua), line, live set, session, 3 day-usage keys.
-- ARGV: now, month, previous month, their bundle expiries (_lib.lua), then
--   6 imsi (''), 7 session id, 8 nas ip, 9 slice bytes, 10 session ttl, 11 check identity (1/0),
--   12 a new session generation, 13 the generation the caller expects ('' for none;
--   quota.renewals), 14 today (YYYYMMDD), 15 gateway (''), 16 the gateway's Acct-Session-Id (''),
--   17 slot ('': the request named its session), 18 a new session id (with a slot).
-- An Access-Request that names no session (no Acct-Session-Id, no Class) has a slot instead: its
-- gateway, SIM and APN (aaa.access). The line's field 'slot:<slot>' names the slot's latest
-- session; the request is that session while it is live and has had no accounting report (the
-- gateway asking again), else a new session under ARGV[18] (KEYS[10]). ARGV[7] is the caller's
-- guess of the latest; a wrong guess is answered {'retry', latest}.
-- Reply: {reason}, {'retry', session id}, or {'ok', granted, facts, generation, same (1: the
--   session is the expected live one), new (1: the session record was made now), session id}.
local imsi, sid, nas, slice, ttl = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[10]
local check_identity, new_gen, expected_gen, today, gw, asid = ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15],
  ARGV[16]
local slot, spare = ARGV[17], ARGV[18]
local plan, start = maintain()
if not plan then return {'unknown'} end
local kl, klive, ks = KEYS[4], KEYS[5], KEYS[6]
local days = {KEYS[7], KEYS[8], KEYS[9]}
local l = redis.call('HMGET', kl, 'status', 'imsi', 'coupon', 'held', 'voice', 'next_imsi', 'speed')
if not l[1] then return {'unknown'} end
-- A refusal gives the session's address back (the caller releases it): no process may go on
-- trusting its note of the lease, so the session's generation goes.
local function refuse(reason)
  redis.call('HDEL', ks, 'gen')
  return {reason}
end
if l[1] ~= 'active' then return refuse(l[1]) end
-- A contract's lines are in service from its start day (Japan time).
if start and start > today then return refuse('not-started') end
if imsi ~= '' and imsi ~= l[2] then
  -- R-32/R-33: a new card attaches once activated; an old one never again.
  if imsi == l[6] then return refuse('card-pending') end
  return refuse('card-replaced')
end
-- R-50: a voice line attaches only once its contract holder's identity is verified.
if check_identity == '1' and l[5] == '1' and redis.call('HGET', KEYS[1], 'identity') ~= 'verified' then
  return refuse('identity-unverified')
end
if slot ~= '' then
  local latest = redis.call('HGET', kl, 'slot:' .. slot)
  if latest and latest ~= sid then return {'retry', latest} end
  local st = latest and redis.call('HMGET', ks, 'stopped', 'rep') or {}
  if not latest or st[1] ~= '0' or st[2] then
    sid, ks = spare, KEYS[10]
    redis.call('HSET', kl, 'slot:' .. slot, sid)
  end
end
-- R-3 passed: record the session. The same live session (a re-authorization) keeps its counters;
-- an ended one, or none, starts afresh. A session whose 'stopped' is '0' is in the live set
-- already: every script that writes '0' adds it there.
local sess = redis.call('HMGET', ks, 'stopped', 'nas', 'imsi', 'gen', 'ttl_at')
local gen, same, new = sess[4], 0, 0
if sess[1] == false or sess[1] == '1' then
  gen, new = new_gen, 1
  redis.call('DEL', ks)
  redis.call('HSET', ks, 'started', ARGV[1], 'at', ARGV[1], 'octets', 0, 'chg', 0, 'stopped', '0', 'nas', nas,
    'imsi', imsi, 'gen', gen, 'ttl_at', ARGV[1], 'gw', gw)
  if asid ~= '' then redis.call('HSET', ks, 'asid', asid) end
  redis.call('EXPIRE', ks, ttl)
  redis.call('SADD', klive, sid)
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
    put[#put + 1] = 'ttl_at'; put[#put + 1] = ARGV[1]
    redis.call('EXPIRE', ks, ttl)
  end
  if #put > 0 then redis.call('HSET', ks, unpack(put)) end
end
-- R-12: a SIM holding less than a slice draws one.
local granted = 0
local held = num(l[4])
if l[3] == '1' and held < slice then
  granted = draw(slice)
  if granted > 0 then
    held = held + granted
    redis.call('HSET', kl, 'held', s(held))
  end
end
return {'ok', granted, facts_of(plan, l[1], l[3], held, l[7], days), gen, same, new, sid}
