-- index_cas.lua: compare-and-set of an index key: if it holds expected, set it to new (no expiry)
-- or, when new is empty, delete it.
-- KEYS: index
-- ARGV: expected, new
-- Reply: 1 if changed, else 0
local index = unpack(KEYS)
local expected, new = unpack(ARGV)
if redis.call('GET', index) ~= expected then return 0 end
if new == '' then
  redis.call('DEL', index)
else
  redis.call('SET', index, new)
end
return 1
