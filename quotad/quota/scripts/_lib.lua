-- _lib.lua: shared helpers, prepended to every contract script (those whose header says
-- "Prepended: _lib.lua"; quota/lua.py SCRIPTS is the list that the runner follows).
-- Contract scripts take KEYS[1..3] = contract, buckets, expiries (the contract hash, bucket hash,
-- bucket-expiry zset) and ARGV[1..5] = now, month, prev_month, bundle_exp, prev_bundle_exp (the
-- month key, the previous month key, expiry of this month's bundle and of the previous month's:
-- all computed in Python, so scripts are deterministic). These helpers read them by number.

local function num(v)
  if v == false or v == nil then return 0 end
  return tonumber(v) or 0
end

-- Numbers go to redis.call as they are: the server writes an integer up to 2^53 as its exact
-- decimal digits (Redis 6.2/7.0 with '%.17g', Valkey 8 as the shortest exact form), where Lua's
-- own tostring() and '..' would switch to exponents (tests/integration/test_lua_numbers.py). A
-- number in a reply is sent as an integer (truncated): replies hold whole byte counts only.

-- The contract's 'next_exp' field is the earliest expiry among its buckets ('' for none), so
-- that the scripts of every request need not look for expired buckets before that instant.
-- Contracts written before the field existed lack it: the next maintain() looks and sets it.
local function new_bucket(kc, kb, kx, kind, size, exp)
  local id = string.format('%08d', redis.call('HINCRBY', kc, 'seq', 1))
  redis.call('HSET', kb, id .. '.kind', kind, id .. '.size', size, id .. '.left', size,
    id .. '.exp', exp)
  redis.call('ZADD', kx, exp, id)
  local nxt = redis.call('HGET', kc, 'next_exp')
  if nxt and (nxt == '' or tonumber(exp) < tonumber(nxt)) then redis.call('HSET', kc, 'next_exp', exp) end
  return id
end

-- R-10: the bundle of a month; the start month's is pro-rated (computed at creation).
local function grant_bundle(kc, kb, kx, c, month, exp)
  if tonumber(month) < tonumber(c[1]) then return end
  local size = num(c[3])
  if month == c[1] then size = num(c[2]) end
  if size > 0 then new_bucket(kc, kb, kx, 'bundle', size, exp) end
end

-- R-14: expired buckets leave the pool at their expiry instant; then note the next expiry.
local function drop_expired(kc, kb, kx, now)
  local gone = redis.call('ZRANGEBYSCORE', kx, '-inf', now)
  for _, id in ipairs(gone) do
    redis.call('HDEL', kb, id .. '.kind', id .. '.size', id .. '.left', id .. '.exp')
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', kx, '-inf', now) end
  local first = redis.call('ZRANGE', kx, 0, 0, 'WITHSCORES')
  redis.call('HSET', kc, 'next_exp', first[2] or '')
end

-- Lazy time (its no-op case is also quota/steady.py's): grant the bundles of this month (and of the previous one, still valid, if the
-- contract was not touched then) and drop expired buckets. Returns the contract's plan (false
-- for no contract) and its start day (YYYYMMDD).
local function maintain()
  local kc, kb, kx = KEYS[1], KEYS[2], KEYS[3]
  local now, month, prev = ARGV[1], ARGV[2], ARGV[3]
  local c = redis.call('HMGET', kc, 'plan', 'bundle_month', 'next_exp', 'start')
  if not c[1] then return false end
  local last = c[2]
  local nxt = c[3]
  -- Granted this month already (the usual case) needs no number parsed and no bundle sizes read.
  if last ~= month and num(last) < tonumber(month) then
    local g = redis.call('HMGET', kc, 'start_month', 'start_bundle', 'bundle')
    if num(last) < tonumber(prev) then grant_bundle(kc, kb, kx, g, prev, ARGV[5]) end
    grant_bundle(kc, kb, kx, g, month, ARGV[4])
    redis.call('HSET', kc, 'bundle_month', month)
    nxt = false  -- new buckets: look again
  end
  if nxt == false or (nxt ~= '' and tonumber(now) >= tonumber(nxt)) then drop_expired(kc, kb, kx, now) end
  return c[1], c[4]
end

-- Sum of what is left in unexpired buckets (maintain() has dropped the expired ones): one read
-- of the bucket hash, whose '<id>.left' fields are the buckets' balances.
local function pool_left()
  local h = redis.call('HGETALL', KEYS[2])
  local total = 0
  for i = 1, #h, 2 do
    if string.sub(h[i], -5) == '.left' then total = total + num(h[i + 1]) end
  end
  return total
end

-- R-12: take up to want bytes, nearest expiry first, spanning buckets. Returns what was taken.
local function draw(want)
  local got = 0
  if want <= 0 then return 0 end
  local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
  for _, id in ipairs(ids) do
    local left = num(redis.call('HGET', KEYS[2], id .. '.left'))
    if left > 0 then
      local take = math.min(left, want - got)
      redis.call('HSET', KEYS[2], id .. '.left', left - take)
      got = got + take
      if got >= want then break end
    end
  end
  return got
end

-- A live session's expiry is pushed back at most once per 1/48 of its TTL (its 'ttl_at' field says
-- when it last was), so that a steady re-authorization writes nothing at all.
local function ttl_due(ttl_at, ttl)
  if ttl_at == false then return true end
  local since = tonumber(ARGV[1]) - tonumber(ttl_at)
  return since < 0 or since >= tonumber(ttl) / 48
end

-- Low-speed usage over the R-22 window: the day keys given (current day and the two before).
local function low_window(day_keys)
  local total = 0
  for _, k in ipairs(day_keys) do total = total + num(redis.call('HGET', k, 'low')) end
  return total
end

-- Facts as returned to Python: plan, status, coupon, held, pool, low_3day, speed. The hot-path
-- scripts pass the line fields they have already read (the held balance as they left it).
local function facts_of(plan, status, coupon, held, speed, day_keys)
  return {plan, status, coupon, held, pool_left(), low_window(day_keys), speed or ''}
end

-- The request path's facts (attach.lua, account.lua): with the coupon switch on and data held,
-- the speed is high whatever the pool and the 3-day window say (policy.decide), so neither is
-- read and both are -1 (model.NOT_READ): a steady request reads no bucket and no day.
local function request_facts(plan, status, coupon, held, speed, day_keys)
  if coupon == '1' and held > 0 then return {plan, status, coupon, held, -1, -1, speed or ''} end
  return facts_of(plan, status, coupon, held, speed, day_keys)
end

local function facts(kl, day_keys)
  local l = redis.call('HMGET', kl, 'status', 'coupon', 'held', 'speed')
  return facts_of(redis.call('HGET', KEYS[1], 'plan'), l[1], l[2], num(l[3]), l[4], day_keys)
end
