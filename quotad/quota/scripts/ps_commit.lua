-- ps_commit.lua: write a public-safety contract tree and its lines' RADIUS records, only if
-- nobody changed the tree since it was read (optimistic: the caller re-reads and retries on RETRY).
-- KEYS: tree, contract, lines...
-- ARGV: version, doc, records...
-- Reply: {'ERR', 'conflict', 'id'} | {'RETRY'} | {'OK', new version}
--
-- tree is the tree hash (v, doc); contract the consumer contract hash of the same id (a create is
-- refused if it exists); lines the line hashes. version is the version read ('0': create), doc
-- the tree as JSON, records each line hash's fields as a JSON object, in the order of lines.
local tree, contract = unpack(KEYS)
local version, doc = unpack(ARGV)
local v = redis.call('HGET', tree, 'v')
if version == '0' then
  if v or redis.call('EXISTS', contract) == 1 then return {'ERR', 'conflict', 'id'} end
elseif v ~= version then
  return {'RETRY'}
end
local nv = (tonumber(v) or 0) + 1
redis.call('HSET', tree, 'v', nv, 'doc', doc)
for i = 3, #KEYS do
  local f = cjson.decode(ARGV[i])
  for name, value in pairs(f) do redis.call('HSET', KEYS[i], name, value) end
end
return {'OK', nv}
