"""The script runner: the Lua scripts loaded into Redis and called, over redis-py or the pipelining
client, with the calendar arguments every contract script takes.

Every state change is one Lua script call on one hash slot (see keys.py for the schema): the
contract's scripts on the contract's slot, the address leases on the IP pool's slot. Time is
computed here and passed in, so the scripts are deterministic and tests can move the clock. Works
with redis.asyncio.Redis and redis.asyncio.RedisCluster alike (``RedisClient``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol, TypedDict

from redis.exceptions import NoScriptError, RedisError

from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.model import LineRef, QuotaSettings
from quotad.quota.resp import Encoded, flat

# A script's KEYS: plain, or a fixed set encoded once (the IP pool's), or a list whose first item
# is a run encoded once (session_run) and the rest plain.
Keys = list[Any] | Encoded
Call = tuple[str, Keys, list[Any]]  # a script's name, KEYS and ARGV


class RegisteredScript(Protocol):
    """What redis-py's register_script gives: a script callable by its SHA."""

    script: Any
    sha: str

    def __call__(self, keys: list[Any], args: list[Any]) -> Awaitable[Any]: ...


class RedisClient(Protocol):
    """The part of redis.asyncio.Redis / RedisCluster that the stores and the holders of their
    client use (each returns an awaitable; redis-py's types say it may be either)."""

    def register_script(self, script: str) -> Any: ...
    def script_load(self, script: Any) -> Any: ...
    def script_exists(self, *args: Any) -> Any: ...
    def ping(self, **kwargs: Any) -> Any: ...
    def aclose(self) -> Any: ...
    def execute_command(self, *args: Any, **options: Any) -> Any: ...
    def get(self, name: Any) -> Any: ...
    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any: ...
    def hget(self, name: Any, key: Any) -> Any: ...
    def hmget(self, name: Any, keys: Any, *args: Any) -> Any: ...
    def hgetall(self, name: Any) -> Any: ...
    def smembers(self, name: Any) -> Any: ...
    def scard(self, name: Any) -> Any: ...
    def exists(self, *names: Any) -> Any: ...
    def zrangebyscore(self, name: Any, *args: Any, **kwargs: Any) -> Any: ...
    def scan_iter(self, *args: Any, **kwargs: Any) -> Any: ...


class PipelinedClient(Protocol):
    """The pipelining client (quota.fastredis.FastRedis): calls sent at once, answered as futures.
    ``epoch`` moves whenever a connection is lost (quota.renewals)."""

    epoch: int

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> asyncio.Future[Any]: ...
    def call(self, *args: Any) -> asyncio.Future[Any]: ...
    def transaction(self, *commands: bytes) -> asyncio.Future[Any]: ...
    def get(self, key: str) -> asyncio.Future[Any]: ...
    async def script_load(self, script: str) -> str: ...


class ScriptCalendar:
    """The calendar ARGV of the contract scripts (quota.lua CALENDAR) and the 3-day window's day
    keys (R-22), each computed once per Japan month or day and reused until it turns."""

    def __init__(self, timezone: str) -> None:
        self.timezone = timezone
        self._month: tuple[float, float, Encoded] = (0.0, -1.0, Encoded())
        self.days: tuple[float, float, list[str]] = (0.0, -1.0, [])  # (start, end, day keys)

    def month(self, now: float) -> Encoded:
        """ARGV month .. prev_bundle_exp: the month, the previous month, their bundle expiries."""
        start, end, parts = self._month
        if not start <= now < end:
            tz = self.timezone
            day = cal.local(now, tz)
            year, month = day.year, day.month
            pyear, pmonth = cal.add_months(year, month, -1)
            parts = Encoded(cal.month_key_of(year, month), cal.month_key_of(pyear, pmonth),
                            repr(cal.bundle_expiry(year, month, tz)), repr(cal.bundle_expiry(pyear, pmonth, tz)))
            nyear, nmonth = cal.add_months(year, month, 1)
            self._month = (cal.month_start_instant(year, month, tz), cal.month_start_instant(nyear, nmonth, tz), parts)
        return parts

    def window(self, now: float) -> list[str]:
        """The 3-day window's day keys (YYYYMMDD), today first."""
        start, end, days = self.days
        if not start <= now < end:
            days = cal.window_day_keys(now, self.timezone)
            day = cal.local(now, self.timezone).replace(hour=0, minute=0, second=0, microsecond=0)
            self.days = (day.timestamp(), (day + dt.timedelta(days=1)).timestamp(), days)
        return days

    def day_keys(self, ref: LineRef, now: float) -> list[str]:
        """The line's usage keys of the 3-day window (quota.lua DAYS)."""
        ck = k.ContractKeys(ref.contract_id)
        return [ck.usage(ref.msisdn, day) for day in self.window(now)]


class ClockRun:
    """The leading ARGV of a hot-path script that change at most once a second, encoded once a
    second: now in whole seconds (an integer, cheaper to send than a float: the scripts store it
    as a start or report time and compare it with expiries, which fall on whole seconds), the
    calendar (quota.lua CALENDAR), with ``today`` the day key (YYYYMMDD), then ``tail`` (fixed
    settings)."""

    __slots__ = ("_calendar", "_run", "_second", "_tail", "_today")

    def __init__(self, calendar: ScriptCalendar, *tail: Any, today: bool = False) -> None:
        self._calendar = calendar
        self._tail = tail
        self._today = today
        self._second = -1
        self._run = Encoded()

    def at(self, now: float) -> Encoded:
        second = int(now)
        if second != self._second:
            day = (self._calendar.window(now)[0],) if self._today else ()
            self._run = Encoded(second, *self._calendar.month(now).values, *day, *self._tail)
            self._second = second
        return self._run


class LineKeys(TypedDict):
    """The KEYS of one line's attach and accounting scripts (quota.lua SESSION_KEYS), encoded
    once per line and Japan day, and again per session: on the hot path nine keys cost one
    argument (``session_run``). Also the reads of a steady re-authorization (quota.steady),
    encoded once per line and slot (``reads_slot``) and per session (``read_sid``).

    A dict of str, bytes, None and one tuple of str, never an object: the cyclic garbage
    collector stops tracking such a dict at its next full collection, and the store keeps one a
    line (up to ``index_cache_entries``). As objects (five a line) they made every full
    collection walk them: 18-24 ms a pause with 10,000 lines (docs/benchmarks.md, "Pauses").
    """

    day: str  # the Japan day (YYYYMMDD) the keys are for
    lead: tuple[str, ...]  # the line's keys (quota.lua LINE_KEYS order but live: SESSION_KEYS[:-1])
    lead_resp: bytes  # ``lead`` as RESP bulk strings
    contract: str
    line: str
    today: str  # the line's usage key of today (day0)
    session_prefix: str
    owner_prefix: str
    sid: str | None  # the session ``session``, ``owner`` and ``run_*`` are of
    session: str
    owner: str  # its lease owner (keys.session_owner)
    run_resp: bytes  # ``lead`` and ``session`` as RESP bulk strings
    run_text: str | None  # the same as text when ASCII (resp.encode_command's fast path)
    reads_slot: str | None  # the slot ``contract_read`` and ``line_read`` are for
    contract_read: bytes
    line_read: bytes
    read_sid: str | None  # the session ``session_read`` is of
    session_read: bytes


def line_keys(ref: LineRef, days: list[str]) -> LineKeys:
    """The line's keys for the Japan day ``days[0]`` (``days``: the 3-day window)."""
    ck = k.ContractKeys(ref.contract_id)
    lead = tuple(ck.line_keys(ref.msisdn, days))
    return {
        "day": days[0], "lead": lead, "lead_resp": Encoded(*lead).resp, "contract": lead[0],
        "line": lead[len(lua.POOL)], "today": lead[len(lua.POOL) + 2],
        "session_prefix": ck.session_prefix(ref.msisdn),
        "owner_prefix": k.session_owner(ref.contract_id, ref.msisdn, ""),
        "sid": None, "session": "", "owner": "", "run_resp": b"", "run_text": None,
        "reads_slot": None, "contract_read": b"", "line_read": b"", "read_sid": None, "session_read": b"",
    }


def session_run(line: LineKeys, sid: str) -> Encoded:
    """The session's script KEYS as one run; sets the line's ``session`` and ``owner`` to the
    session's (read them before the next await)."""
    if sid != line["sid"]:
        session = line["session"] = line["session_prefix"] + sid
        line["owner"] = line["owner_prefix"] + sid
        resp = line["run_resp"] = line["lead_resp"] + Encoded(session).resp
        line["run_text"] = resp.decode() if resp.isascii() else None
        line["sid"] = sid
    return Encoded.from_parts(line["lead"] + (line["session"],), line["run_resp"], line["run_text"])


class ScriptRunner:
    """Runs the named scripts: on the pipelining client (``fast``) when there is one, else through
    redis-py, at most ``max_in_flight`` at a time. Also the plain commands of the stores' request
    path, on the same transport."""

    def __init__(self, client: RedisClient, settings: QuotaSettings, names: Iterable[str],
                 fast: PipelinedClient | None = None) -> None:
        self.client = client
        self.fast = fast
        self.calendar = ScriptCalendar(settings.timezone)
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        values = lua.constants(settings)
        self.scripts: dict[str, RegisteredScript] = {
            name: client.register_script(lua.SCRIPTS[name].source(values)) for name in names}

    def shas(self) -> list[str]:
        return [script.sha for script in self.scripts.values()]

    async def load_scripts(self) -> None:
        """Load every script into Redis (all primaries on a cluster); EVALSHA reloads if flushed."""
        for script in self.scripts.values():
            await (self.fast or self.client).script_load(script.script)

    async def scripts_loaded(self) -> bool:
        """True if Redis holds every script; if not, loads them (Redis restarted without them)."""
        shas = self.shas()
        try:
            if all(await self.client.script_exists(*shas)):
                return True
            await self.load_scripts()
            return all(await self.client.script_exists(*shas))
        except (RedisError, OSError):
            return False

    async def ping(self) -> bool:
        """True if Redis answers."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()

    async def run(self, name: str, keys: Keys, args: list[Any]) -> Any:
        """One script call, its reply."""
        if self.fast is not None:
            try:
                return await self.send(name, keys, args)
            except NoScriptError:  # Redis restarted or flushed its script cache
                await self.load_scripts()
                return await self.send(name, keys, args)
        async with self._in_flight:
            return await self.scripts[name](keys=flat(keys), args=flat(args))

    def send(self, name: str, keys: Keys, args: list[Any]) -> Any:
        """Fast path: send a script call now, return its future (pipelines with other sends).

        The arguments may hold Encoded runs of values; the keys may be one (encoded once, reused),
        or a list that starts with one (session_run)."""
        assert self.fast is not None
        if isinstance(keys, Encoded):
            return self.fast.evalsha(self.scripts[name].sha, keys.count, keys, *args)
        head = keys[0] if keys else None
        count = len(keys) + head.count - 1 if type(head) is Encoded else len(keys)
        return self.fast.evalsha(self.scripts[name].sha, count, *keys, *args)

    async def pair(self, first: Call, second: Call | None, sequential: bool = False) -> tuple[Any, Any]:
        """Two script calls: pipelined on the fast path; else one after the other (``sequential``:
        the second only if the first said ok) or concurrently."""
        if self.fast is None:
            res = await self.run(*first)
            if second is None or (sequential and lua.text(res[0]) != "ok"):
                return res, None
            return res, await self.run(*second)
        futures = [self.send(*first)] + ([self.send(*second)] if second else [])
        try:  # the usual case: both answered
            return await futures[0], (await futures[1] if second else None)
        except RedisError:
            pass
        results: list[Any] = []
        for future in futures:  # a failure: collect both (a done future awaited again gives the same)
            try:
                results.append(await future)
            except RedisError as exc:
                results.append(exc)
        if any(isinstance(r, NoScriptError) for r in results):
            await self.load_scripts()
            return await self.pair(first, second, sequential)
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results[0], results[1] if second else None

    async def command(self, *args: Any) -> Any:
        """One plain command: on the pipelining client when there is one."""
        if self.fast is not None:
            return await self.fast.call(*args)
        async with self._in_flight:
            return await self.client.execute_command(*args)

    async def get(self, key: str) -> Any:
        """GET of one key (the index lookups of the request path), on the pipelining client when
        there is one."""
        if self.fast is not None:
            return await self.fast.get(key)
        async with self._in_flight:
            return await self.client.get(key)
