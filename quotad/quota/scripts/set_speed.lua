-- set_speed.lua: compare-and-set of a line's speed class.
-- KEYS: line
-- ARGV: expected, new
-- Reply: 1 changed, 0 not (the speed was not expected), -1 no such line
local line = unpack(KEYS)
local expected, new = unpack(ARGV)
local cur = redis.call('HGET', line, 'speed')
if cur == false then
  if redis.call('EXISTS', line) == 0 then return -1 end
  cur = ''
end
if cur ~= expected then return 0 end
redis.call('HSET', line, 'speed', new)
return 1
