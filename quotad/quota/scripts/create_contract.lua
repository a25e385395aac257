-- create_contract.lua: create a contract.
-- Prepended: _lib.lua
-- KEYS: contract, buckets, expiries
-- ARGV: now, month, prev_month, bundle_exp, prev_bundle_exp, plan, start_day, start_month,
--   start_bundle, bundle, max_lines
-- Reply: {'ERR', 'conflict', 'contract_id'} | {'OK', pool}
--
-- start_bundle is the start month's bundle, pro-rated (R-10).
local contract, buckets, expiries = unpack(KEYS)
local now, month, prev_month, bundle_exp, prev_bundle_exp, plan, start_day, start_month, start_bundle, bundle,
  max_lines = unpack(ARGV)
if redis.call('EXISTS', contract) == 1 then return {'ERR', 'conflict', 'contract_id'} end
redis.call('HSET', contract, 'plan', plan, 'start', start_day, 'start_month', start_month,
  'start_bundle', start_bundle, 'bundle', bundle, 'max_lines', max_lines, 'nlines', 0,
  'bundle_month', 0, 'seq', 0, 'created', now)
maintain()
return {'OK', pool_left()}
