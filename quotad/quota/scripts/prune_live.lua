-- prune_live.lua: forget live-session ids whose record has expired (the gateway lost the Stop).
-- KEYS: live, sessions...
-- ARGV: sids...
-- Reply: how many were forgotten
--
-- sessions holds one session key per id of sids, in the same order.
local live = unpack(KEYS)
local n = 0
for i, sid in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    n = n + redis.call('SREM', live, sid)
  end
end
return n
