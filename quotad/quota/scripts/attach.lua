-- A SIM attaches. KEYS: contract, buckets, expiries, line, live set, session, 3 day-usage keys.
-- ARGV[6..]: imsi ('' if none), session id, nas ip, slice bytes, session ttl, check identity (1/0),
-- a new session generation, the generation the caller expects ('' for none; quota.renewals).
-- Returns {'ok', granted, facts, generation, 1 if the session is the expected live one else 0}.
local plan = maintain()
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
if ARGV[6] ~= '' and ARGV[6] ~= l[2] then
  -- R-32/R-33: a new card attaches once activated; an old one never again.
  if ARGV[6] == l[6] then return refuse('card-pending') end
  return refuse('card-replaced')
end
-- R-50: a voice line attaches only once its contract holder's identity is verified.
if ARGV[11] == '1' and l[5] == '1' and redis.call('HGET', KEYS[1], 'identity') ~= 'verified' then
  return refuse('identity-unverified')
end
-- R-3 passed: record the live session (a re-authorization keeps its counters). A session whose
-- 'stopped' is '0' is in the live set already: every script that writes '0' adds it there.
local sess = redis.call('HMGET', ks, 'stopped', 'nas', 'imsi', 'gen', 'ttl_at')
local gen, same = sess[4], 0
if sess[1] == false or sess[1] == '1' then
  gen = ARGV[12]
  redis.call('DEL', ks)
  redis.call('HSET', ks, 'started', ARGV[1], 'octets', 0, 'exempt', 0, 'stopped', '0', 'nas', ARGV[8],
    'imsi', ARGV[6], 'gen', gen, 'ttl_at', ARGV[1])
  redis.call('EXPIRE', ks, ARGV[10])
  redis.call('SADD', klive, ARGV[7])
else
  if gen and gen == ARGV[13] then same = 1 end
  local put = {}
  if not gen then
    gen = ARGV[12]
    put = {'nas', ARGV[8], 'imsi', ARGV[6], 'gen', gen}
  elseif sess[2] ~= ARGV[8] or sess[3] ~= ARGV[6] then
    put = {'nas', ARGV[8], 'imsi', ARGV[6]}
  end
  if ttl_due(sess[5], ARGV[10]) then
    put[#put + 1] = 'ttl_at'; put[#put + 1] = ARGV[1]
    redis.call('EXPIRE', ks, ARGV[10])
  end
  if #put > 0 then redis.call('HSET', ks, unpack(put)) end
end
-- R-12: a SIM holding less than a slice draws one.
local slice = tonumber(ARGV[9])
local granted = 0
local held = num(l[4])
if l[3] == '1' and held < slice then
  granted = draw(slice)
  if granted > 0 then
    held = held + granted
    redis.call('HSET', kl, 'held', s(held))
  end
end
return {'ok', granted, facts_of(plan, l[1], l[3], held, l[7], days), gen, same}
