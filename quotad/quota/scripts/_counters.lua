-- _counters.lua: counting one accounting report of a session once (R-71, R-23), before anything
-- is written. Prepended to account.lua (after _lib.lua) and ps_account.lua, as their headers say.
--
-- A session record (q:{c:C}:s:M:<sid>) keeps what its reports need: octets (the gateway's
-- cumulative counter at the latest report), chg (the cumulative chargeable octets counted so far:
-- total minus zero-rated, never lowered), at (the event time of the latest report, or of the
-- session's start), stopped ('0' live, '1' ended).
--
-- judge(sess, status, octets, exempt, event, session_time, rate, slack, max_age) → outcome, and for
-- 'counted': added (octets new to this session), charge (chargeable octets due now), fresh (true:
-- a new session begins under this id, its counters from zero). sess = HMGET of 'stopped',
-- 'octets', 'chg', 'at'. Outcomes: 'counted', 'stale' (older than the session's latest report, or of its second with lower counters),
-- 'ended' (the session has ended and this is no Start after its end), 'implausible' (more than
-- the session could have carried at `rate` bytes/s since its previous report, plus `slack`).
local function judge(sess, status, octets, exempt, event, session_time, rate, slack, max_age)
  local stopped, last_at = sess[1], tonumber(sess[4])
  local last_o, last_c = tonumber(sess[2]) or 0, tonumber(sess[3]) or 0
  local fresh = false
  if stopped == '1' then
    -- A Start after the end begins a new session reusing the id; anything else (a resent Start
    -- included: it is dated at or before the end) is late.
    if status ~= 1 or (last_at and event <= last_at) then return 'ended' end
    fresh = true
  elseif stopped == false then
    fresh = true
  elseif last_at and event < last_at then
    return 'stale'
  elseif last_at and event == last_at and octets < last_o then
    -- Lower counters dated the same second as the latest report: the earlier of two reports
    -- delivered out of order (Event-Timestamp has whole seconds; a retry held through a failover
    -- arrives late), not a restart, which would not also report within that second.
    return 'stale'
  end
  -- Counters below the latest ones, in a report newer than it: the gateway started counting
  -- again (it restarted and kept the id), so the whole figure is new.
  if fresh or octets < last_o then last_o, last_c = 0, 0 end
  local since = last_at
  if stopped == false then
    since = (session_time ~= '' and event - tonumber(session_time)) or event - max_age
  end
  local added = octets - last_o
  if added > slack + rate * math.max(0, event - (since or event - max_age)) then return 'implausible' end
  local chargeable = math.max(0, octets - exempt)
  return 'counted', added, math.max(0, chargeable - last_c), fresh, math.max(chargeable, last_c)
end
