-- top_up.lua: a line moved back to high speed while in session draws a slice before its CoA is
-- sent (R-12, R-24), as attach.lua does when a SIM attaches: the CoA then carries data the
-- gateway may use at once, instead of the 0 a throttled line holds.
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, line, day0, day1, day2
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, slice
-- Reply: {'unknown'} | {'ok', granted, facts}
--
-- Draws only for an active line with the coupon switch ON whose speed class is still 'high' (a
-- later change back to low must not take data) and that holds less than a slice.
local contract, buckets, expiries, line, day0, day1, day2 = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, slice = unpack(ARGV)
slice = tonumber(slice)
local plan = maintain()
if not plan then return {'unknown'} end
local l = redis.call('HMGET', line, 'status', 'coupon', 'held', 'speed')
if not l[1] then return {'unknown'} end
local held = num(l[3])
local granted = 0
if l[1] == 'active' and l[2] == '1' and l[4] == 'high' and held < slice then
  granted = draw(slice)
  if granted > 0 then
    held = held + granted
    redis.call('HSET', line, 'held', held)
  end
end
return {'ok', granted, facts_of(plan, l[1], l[2], held, l[4], {day0, day1, day2})}
