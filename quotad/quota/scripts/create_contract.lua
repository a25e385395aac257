-- Create a contract. KEYS: contract, buckets, expiries.
-- ARGV[6..]: plan, start day, start month, start-month bundle (pro-rated), bundle, max lines.
if redis.call('EXISTS', KEYS[1]) == 1 then return {'ERR', 'conflict', 'contract_id'} end
redis.call('HSET', KEYS[1], 'plan', ARGV[6], 'start', ARGV[7], 'start_month', ARGV[8],
  'start_bundle', ARGV[9], 'bundle', ARGV[10], 'max_lines', ARGV[11], 'nlines', 0,
  'bundle_month', 0, 'seq', 0, 'created', ARGV[1])
maintain()
return {'OK', pool_left()}
