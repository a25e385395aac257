-- line_facts.lua: a line's facts now (after lazy maintenance).
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries, line, day0, day1, day2
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp
-- Reply: {'unknown'} | {'ok', facts}
local contract, buckets, expiries, line, day0, day1, day2 = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp = unpack(ARGV)  -- read by maintain() (_lib.lua)
if not maintain() then return {'unknown'} end
if redis.call('EXISTS', line) == 0 then return {'unknown'} end
return {'ok', facts(line, {day0, day1, day2})}
