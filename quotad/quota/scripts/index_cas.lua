-- Compare-and-set of an index key: if it holds ARGV[1], set it to ARGV[2] (no expiry) or,
-- when ARGV[2] is empty, delete it. KEYS: the index key.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
