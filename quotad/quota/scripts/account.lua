-- An accounting report. KEYS: contract, buckets, expiries, line, live set, session,
-- 3 day-usage keys (today first).
-- ARGV[6..]: session id, status type, cumulative octets, cumulative exempt octets, nas ip,
-- slice bytes, live-session ttl, stopped-session ttl, day-usage ttl, framed ip ('' if none),
-- the gateway's Acct-Session-Id ('' if it is the session id).
local plan = maintain()
if not plan then return {'unknown'} end
local kl, klive, ks, kday = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local days = {KEYS[7], KEYS[8], KEYS[9]}
local sid, status = ARGV[6], tonumber(ARGV[7])
local l = redis.call('HMGET', kl, 'status', 'held', 'speed', 'coupon')
if not l[1] then return {'unknown'} end
local held = num(l[2])
if status ~= 1 and status ~= 2 and status ~= 3 then
  return {'ok', 0, 0, 0, 0, 0, facts_of(plan, l[1], l[4], held, l[3], days)}
end
-- R-71: cumulative counters; only the positive difference counts.
local sess = redis.call('HMGET', ks, 'octets', 'exempt', 'stopped', 'ttl_at')
local octets, exempt = tonumber(ARGV[8]), tonumber(ARGV[9])
local last_o, last_e = num(sess[1]), num(sess[2])
local added = math.max(0, octets - last_o)
local charge = math.max(0, added - math.max(0, exempt - last_e))
-- The session's fields in one write.
local put = {'octets', s(math.max(octets, last_o)), 'exempt', s(math.max(exempt, last_e))}
if sess[3] == false then
  put[#put + 1] = 'started'; put[#put + 1] = ARGV[1]
  put[#put + 1] = 'nas'; put[#put + 1] = ARGV[10]
  put[#put + 1] = 'imsi'; put[#put + 1] = ''
end
if sess[3] == false or status == 2 then
  put[#put + 1] = 'stopped'; put[#put + 1] = (status == 2) and '1' or '0'
end
if ARGV[15] ~= '' then put[#put + 1] = 'ip'; put[#put + 1] = ARGV[15] end
if ARGV[16] ~= '' then put[#put + 1] = 'asid'; put[#put + 1] = ARGV[16] end
local live_ttl = status ~= 2 and sess[3] ~= '1' and ttl_due(sess[4], ARGV[12])
if live_ttl then put[#put + 1] = 'ttl_at'; put[#put + 1] = ARGV[1] end
redis.call('HSET', ks, unpack(put))
if status == 2 then
  redis.call('SREM', klive, sid)
  redis.call('EXPIRE', ks, ARGV[13])
elseif sess[3] == false then
  redis.call('SADD', klive, sid)  -- a live one is in the set already
end
if live_ttl then redis.call('EXPIRE', ks, ARGV[12]) end
-- R-16 / R-17: where the usage goes depends on the line's speed class.
local debited, low_added, overrun, granted = 0, 0, 0, 0
if charge > 0 then
  local today
  if l[3] == 'low' or l[3] == 'restricted' then
    low_added = charge
    today = redis.call('HINCRBY', kday, 'low', s(charge))
  else
    local slice = tonumber(ARGV[11])
    if charge > held then
      granted = draw(math.ceil((charge - held) / slice) * slice)
      held = held + granted
    end
    debited = math.min(charge, held)
    overrun = charge - debited
    held = held - debited
    redis.call('HSET', kl, 'held', s(held))
    if overrun > 0 then redis.call('HINCRBY', kl, 'overrun', s(overrun)) end
    today = redis.call('HINCRBY', kday, 'high', s(charge))
  end
  -- The day's usage key gets its TTL with its first usage (the day is over long before it ends).
  if today == charge then redis.call('EXPIRE', kday, ARGV[14]) end
end
return {'ok', added, debited, low_added, overrun, granted, facts_of(plan, l[1], l[4], held, l[3], days)}
