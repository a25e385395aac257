-- Forget live-session ids whose record has expired (the gateway lost the Stop).
-- KEYS: live set, then one session key per id in ARGV.
local n = 0
for i, sid in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    n = n + redis.call('SREM', KEYS[1], sid)
  end
end
return n
