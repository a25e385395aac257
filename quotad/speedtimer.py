"""The Japan-midnight speed walk: re-decide the speed of every line with a live session at the
instants the calendar changes it, and push the changes by CoA then (R-24).

A line's speed is decided when a request touches it (an attach, an accounting report, an operator
change). Three rules change it with no request, always at a midnight in ``quota.timezone`` (Japan):

- R-22: the 3-day window drops its oldest day, so a ``restricted`` line whose heavy day has left
  it goes back to ``low``;
- R-10: on the 1st the month's bundle arrives (granted at the month's first touch of the contract:
  the walk is that touch), so a line at ``low`` for an empty pool goes back to ``high``;
- R-14: buckets expire at a month's end (the first instant of the next month), so a line that
  holds no data and whose pool was only expiring buckets drops to ``low`` (a line holding a slice
  keeps it, and drops when it has used it: at a report).

Without the walk such a change waits for the line's next report (an Interim, every 10 minutes by
default, or longer on some gateways); R-24 asks that it be pushed at once.

Every process runs ``SpeedTimer.run``. It checks at once on start, at each midnight, and every
``poll`` seconds in between. A check (``tick``) reads the marker ``DONE_KEY`` (the latest midnight
whose walk has completed, by any process). If the current day's midnight is not done, it takes
the lock ``LOCK_KEY`` (SET NX PX, ``lock_seconds``), walks, then advances the marker and releases
the lock in one script. Others skip while the lock is held. The walker extends the lock as it
goes. If the walker dies, its lock lapses and the next process to check walks again from the
start. Walking a line twice changes nothing, and of several processes deciding one transition,
the compare-and-set in ``store.set_speed`` lets exactly one push it. The check at start also
covers a midnight that passed while every process was down. A walk covers every midnight since
the marker at once: it decides each line from the facts now.

The walk: SCAN for live-set keys (``q:{c:<contract>}:live:<msisdn>``; on a Redis Cluster redis-py's
``scan_iter`` visits every primary), ``concurrency`` lines at a time through
``SessionControl.redecide`` (the line's facts script, then the compare-and-set and the queued CoA
if the speed changed). The walk is paced: after each ``slice_seconds`` (10 ms) of walking, scan
included, it rests ``(1 - duty) / duty`` times as long, so it takes at most ``duty`` (half) of the
process's time. (Rests of a millisecond or less overshoot: resting after each group of 8 lines
made a walk 4.4x as long as unpaced, not 2x, and cost 70 % more CPU.) The CoAs go through the
session control's queue (at most 16 pushers) and the CoA client's bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from quotad import log, metrics
from quotad.aaa.sessions import SessionControl
from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota.errors import QuotaError
from quotad.quota.model import LineRef
from quotad.quota.store import QuotaStore

_log = log.get("quotad.speedtimer")
LOCK_KEY = f"{k.PREFIX}:{{speedtimer}}:lock"
DONE_KEY = f"{k.PREFIX}:{{speedtimer}}:done"
LIVE_MATCH = f"{k.PREFIX}:{{c:*}}:live:*"
_LIVE = "}:live:"
WAKE_AFTER = 0.01  # seconds past midnight a timer wakes, so the clock has certainly passed it

# Extend the lock only while it is still this process's.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# The walk of ARGV[2] completed: advance the marker (never back), release the lock if still ours.
_FINISH = """
local done = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[2]) > done then redis.call('SET', KEYS[1], ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Walk:
    """What one walk did."""

    boundary: float  # the midnight walked (epoch)
    lines: int  # lines with a live session re-decided (SCAN may name a line twice: then counted twice)
    changed: int  # of them, speed changes this process made (each queued a CoA)
    skipped: int  # live sets of no consumer line: the line or contract is gone, or a public-safety line
    seconds: float  # how long it took, pacing included
    complete: bool  # False: the lock was lost midway (another process walks); the marker stays


def line_of(key: Any) -> LineRef | None:
    """The line of a live-set key ``q:{c:<contract>}:live:<msisdn>``; None for any other key.
    Ids hold no braces (keys.check_id), so the contract ends at the first ``}``."""
    text = key.decode() if isinstance(key, bytes) else str(key)
    prefix = f"{k.PREFIX}:{{c:"
    end = text.find(_LIVE, len(prefix))
    if not text.startswith(prefix) or end < 0 or "}" in text[len(prefix):end]:
        return None
    contract, msisdn = text[len(prefix):end], text[end + len(_LIVE):]
    return LineRef(contract, msisdn) if contract and msisdn else None


class SpeedTimer:
    def __init__(
        self, store: QuotaStore, sessions: SessionControl, now: Callable[[], float], *, poll: float = 15.0,
        lock_seconds: float = 30.0, concurrency: int = 8, duty: float = 0.5, slice_seconds: float = 0.01,
        scan_count: int = 1000,
    ):
        """``now``: the clock that says which midnight is due; the lines are decided at the session
        control's clock (the daemon's: the same one)."""
        self.store = store
        self.sessions = sessions
        self.now = now
        self.tz = store.settings.timezone
        self.poll = poll
        self.lock_seconds = lock_seconds
        self.concurrency = concurrency
        self.duty = duty
        self.slice_seconds = slice_seconds
        self.scan_count = scan_count
        client = store.client
        self._extend = client.register_script(_EXTEND)
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)

    async def run(self) -> None:
        """Check at once, then at each midnight and every ``poll`` seconds, until cancelled."""
        while True:
            try:
                await self.tick(self.now())
            except RedisError as exc:
                _log.warning("speed_timer_redis_error", error=type(exc).__name__)
            except Exception:  # a bug must not end the timer: the next check tries again
                _log.exception("speed_timer_failed")
            await asyncio.sleep(self.delay(self.now()))

    def delay(self, now: float) -> float:
        """Seconds to the next check: the next midnight, or ``poll`` if that comes first."""
        return min(self.poll, max(cal.next_day_start(now, self.tz) - now, 0.0) + WAKE_AFTER)

    async def tick(self, now: float) -> Walk | None:
        """One check: if the midnight that began the current day (at ``now``) has not been
        walked, and this process gets the lock, walk now. None if there was nothing to do here:
        already walked, or another process holds the lock."""
        boundary = cal.day_start(now, self.tz)
        client = self.store.client
        if await self._done() >= boundary:
            return None
        token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        if not await client.set(LOCK_KEY, token, nx=True, px=self._lock_ms):
            return None
        # Another process may have finished the walk and released the lock in between.
        if await self._done() >= boundary:
            await self._give_up(token)
            return None
        try:
            walk = await self.walk(boundary, token)
        except BaseException:  # Redis failed, or the daemon stops: let another process walk now
            await self._give_up(token)
            raise
        if walk.complete:
            await self._finish(keys=[DONE_KEY, LOCK_KEY], args=[token, repr(boundary)])
            metrics.SPEED_TIMER_DONE.set(boundary)
        metrics.SPEED_TIMER_WALK_SECONDS.set(walk.seconds)
        _log.info("speed_timer_walk", boundary=cal.local(boundary, self.tz).isoformat(), lines=walk.lines,
                  changed=walk.changed, skipped=walk.skipped, seconds=round(walk.seconds, 3), complete=walk.complete)
        return walk

    async def _done(self) -> float:
        """The marker: the latest midnight whose walk has completed (0: none yet)."""
        raw = await self.store.client.get(DONE_KEY)
        done = float(raw.decode() if isinstance(raw, bytes) else raw or 0)
        metrics.SPEED_TIMER_DONE.set(done)
        return done

    async def _give_up(self, token: str) -> None:
        """Release the lock of an unfinished walk, so another process need not wait for it to lapse."""
        with contextlib.suppress(RedisError, OSError, TimeoutError):  # else it lapses after lock_seconds
            await asyncio.wait_for(self._release(keys=[LOCK_KEY], args=[token]), 1.0)

    @property
    def _lock_ms(self) -> int:
        return max(int(self.lock_seconds * 1000), 1)

    async def walk(self, boundary: float, token: str | None = None) -> Walk:
        """Re-decide every line that has a live session. With ``token`` (the lock's value) the
        lock is extended as the walk goes, and the walk stops if it is no longer this process's."""
        loop = asyncio.get_running_loop()
        started = refreshed = busy_since = loop.time()
        rest = (1 - self.duty) / self.duty
        lines = changed = skipped = 0
        complete = True
        async with contextlib.aclosing(self._groups()) as groups:
            async for group in groups:
                outcomes = await asyncio.gather(*(self._redecide(ref) for ref in group), return_exceptions=True)
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome  # Redis failed: the walk is retried at a later check
                    if outcome is None:
                        skipped += 1
                        continue
                    lines += 1
                    metrics.SPEED_TIMER_LINES.inc()
                    speed, won = outcome
                    if won:
                        changed += 1
                        metrics.SPEED_TIMER_CHANGES.labels(speed).inc()
                busy = loop.time() - busy_since
                if rest > 0 and busy >= self.slice_seconds:  # a few ms at a time: shorter sleeps overshoot
                    await asyncio.sleep(busy * rest)
                    busy_since = loop.time()
                if token is not None and loop.time() - refreshed >= self.lock_seconds / 3:
                    if not await self._extend(keys=[LOCK_KEY], args=[token, self._lock_ms]):
                        complete = False
                        break
                    refreshed = loop.time()
        return Walk(boundary, lines, changed, skipped, loop.time() - started, complete)

    async def _groups(self) -> AsyncGenerator[list[LineRef], None]:
        group: list[LineRef] = []
        async for key in self.store.client.scan_iter(match=LIVE_MATCH, count=self.scan_count):
            ref = line_of(key)
            if ref is None:
                continue
            group.append(ref)
            if len(group) >= self.concurrency:
                yield group
                group = []
        if group:
            yield group

    async def _redecide(self, ref: LineRef) -> tuple[str, bool] | None:
        try:
            return await self.sessions.redecide(ref)
        except (QuotaError, LookupError):  # gone, a public-safety line, or a plan no longer in the catalog
            return None
