-- A line moved back to high speed while in session draws a slice before its CoA is sent (R-12,
-- R-24), as attach.lua does when a SIM attaches: the CoA then carries data the gateway may use at
-- once, instead of the 0 a throttled line holds.
-- KEYS: contract, buckets, expiries (_lib.lua), line, 3 day-usage keys.
-- ARGV: now, month, previous month, their bundle expiries (_lib.lua), then 6 slice bytes.
-- Draws only for an active line with the coupon switch ON whose speed class is still 'high' (a
-- later change back to low must not take data) and that holds less than a slice.
-- Reply: {'unknown'} or {'ok', granted, facts}.
local plan = maintain()
if not plan then return {'unknown'} end
local kl = KEYS[4]
local l = redis.call('HMGET', kl, 'status', 'coupon', 'held', 'speed')
if not l[1] then return {'unknown'} end
local slice = tonumber(ARGV[6])
local held = num(l[3])
local granted = 0
if l[1] == 'active' and l[2] == '1' and l[4] == 'high' and held < slice then
  granted = draw(slice)
  if granted > 0 then
    held = held + granted
    redis.call('HSET', kl, 'held', s(held))
  end
end
return {'ok', granted, facts_of(plan, l[1], l[2], held, l[4], {KEYS[5], KEYS[6], KEYS[7]})}
