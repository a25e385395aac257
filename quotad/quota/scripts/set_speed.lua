-- Compare-and-set of a line's speed class. KEYS: line. ARGV: expected, new.
local cur = redis.call('HGET', KEYS[1], 'speed')
if cur == false then
  if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  cur = ''
end
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'speed', ARGV[2])
return 1
