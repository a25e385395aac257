-- An accounting report of a public-safety line (R-63, R-71): never throttled for capacity; the
-- usage is counted once per byte (cumulative counters per session) into the group's month
-- (billing, R-65) and the line's day (heavy-use window).
-- KEYS: line, live set, session, month usage hash, today's usage, then the window's other days.
-- ARGV: session id, status type, cumulative octets, nas ip, gateway Acct-Session-Id ('' if the
-- same), now, live ttl, stopped ttl, day-usage ttl, msisdn.
local l = redis.call('HMGET', KEYS[1], 'ps', 'group', 'speed', 'ipv4')
if l[1] ~= '1' then return {'unknown'} end
local status = tonumber(ARGV[2])
local added = 0
if status == 1 or status == 2 or status == 3 then
  local sess = redis.call('HMGET', KEYS[3], 'octets', 'stopped')
  local octets, last = tonumber(ARGV[3]), tonumber(sess[1] or '0')
  added = math.max(0, octets - last)
  if sess[2] == false then
    redis.call('HSET', KEYS[3], 'started', ARGV[6], 'nas', ARGV[4], 'imsi', '', 'stopped', '0', 'ip', l[4])
  end
  redis.call('HSET', KEYS[3], 'octets', string.format('%.0f', math.max(octets, last)))
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], 'asid', ARGV[5]) end
  if status == 2 then
    redis.call('HSET', KEYS[3], 'stopped', '1')
    redis.call('SREM', KEYS[2], ARGV[1])
    redis.call('EXPIRE', KEYS[3], ARGV[8])
  elseif sess[2] ~= '1' then
    redis.call('SADD', KEYS[2], ARGV[1])
    redis.call('EXPIRE', KEYS[3], ARGV[7])
  end
  if added > 0 then
    local a = string.format('%.0f', added)
    redis.call('HINCRBY', KEYS[4], 'g:' .. l[2], a)
    redis.call('HINCRBY', KEYS[4], 'l:' .. ARGV[10], a)
    redis.call('HINCRBY', KEYS[5], 'high', a)
    redis.call('EXPIRE', KEYS[5], ARGV[9])
  end
end
local used = 0
for i = 5, #KEYS do used = used + tonumber(redis.call('HGET', KEYS[i], 'high') or '0') end
return {'ok', string.format('%.0f', added), string.format('%.0f', used), l[3] or ''}
