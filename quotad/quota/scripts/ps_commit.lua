-- Write a public-safety contract tree and its lines' RADIUS records, only if nobody changed the
-- tree since it was read (optimistic: the caller re-reads and retries on RETRY).
-- KEYS[1]: tree hash (v, doc); KEYS[2]: the consumer contract hash of the same id (a create is
-- refused if it exists); KEYS[3..]: line hashes.
-- ARGV[1]: expected version ('0': create), ARGV[2]: the tree as JSON, ARGV[3..]: each line
-- hash's fields as a JSON object, in KEYS order.
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '0' then
  if v or redis.call('EXISTS', KEYS[2]) == 1 then return {'ERR', 'conflict', 'id'} end
elseif v ~= ARGV[1] then
  return {'RETRY'}
end
local nv = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', nv, 'doc', ARGV[2])
for i = 3, #KEYS do
  local f = cjson.decode(ARGV[i])
  for name, value in pairs(f) do redis.call('HSET', KEYS[i], name, value) end
end
return {'OK', nv}
