-- A line's facts now (after lazy maintenance). KEYS: contract, buckets, expiries, line,
-- 3 day-usage keys.
if not maintain() then return {'unknown'} end
if redis.call('EXISTS', KEYS[4]) == 0 then return {'unknown'} end
return {'ok', facts(KEYS[4], {KEYS[5], KEYS[6], KEYS[7]})}
