"""A lean, pipelining Redis client for the hot path.

redis-py's asyncio client costs tens of microseconds of Python per command (connection pool,
semaphores, per-call timeouts) and uses one connection per concurrent call. On the RADIUS hot
path quotad instead keeps ONE connection per process and pipelines: every command issued in the
same event-loop iteration goes out in one write, replies come back in order and are matched to
their futures first-in first-out (RESP guarantees order), parsed by hiredis.

Failure handling, kept simple and safe: a connection error or a command older than ``timeout``
fails every outstanding command with ``ConnectionError``/``TimeoutError`` (redis-py's classes, so
callers catch RedisError as before) and drops the connection; the next command reconnects.
Commands that failed this way were maybe executed, maybe not: callers only use it for idempotent
scripts, or report the failure without acknowledging (R-71).

Commands are encoded by ``quota.resp`` (compiled by Cython at install, like the RADIUS codec).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quotad import metrics
from quotad.quota.resp import Encoded, encode_command


class _Dropped:
    """Stands for the future of a reply nobody waits for (a transaction's MULTI and QUEUED): done."""

    __slots__ = ()

    def done(self) -> bool:
        return True


_DROPPED: Any = _Dropped()
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: FastRedis) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.owner._pending
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if not pending:
                continue
            future, sent = pending.popleft()
            self.owner._replies += 1
            if not self.owner._replies & 15:  # sample 1 reply in 16: latency without per-call cost
                self.owner.latency.observe(time.monotonic() - sent)
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self, exc)


def _error(message: str) -> ResponseError:
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


class FastRedis:
    """One pipelined connection to a single Redis (redis://, unix://); not for Redis Cluster."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._parsed = urlparse(url)
        self._protocol: _Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop  # the connection's, set with it
        self._connecting: asyncio.Future[None] | None = None
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._replies = 0
        self._evalsha: dict[str, Encoded] = {}

        # Counts connections made and lost: a new one may be to a Redis that restarted (and lost
        # the last writes), so what a caller noted about Redis's state in an older epoch is suspect.
        self.epoch = 0
        self.latency = metrics.REDIS_LATENCY.labels("pipeline")

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        p = self._parsed
        factory = lambda: _Protocol(self)  # noqa: E731
        if p.scheme == "unix":
            transport, protocol = await asyncio.wait_for(
                loop.create_unix_connection(factory, unquote(p.path)), self.timeout
            )
        else:
            ssl = p.scheme == "rediss"
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(factory, p.hostname or "127.0.0.1", p.port or 6379, ssl=ssl or None),
                self.timeout,
            )
        self._transport, self._protocol = transport, protocol
        self.epoch += 1
        await self._handshake(p)

    async def _handshake(self, p: Any) -> None:
        if p.password:
            user = unquote(p.username) if p.username else None
            args = ("AUTH", user, unquote(p.password)) if user else ("AUTH", unquote(p.password))
            await self.execute_command(*args)
        db = (p.path or "/0").lstrip("/")
        if p.scheme != "unix" and db not in ("", "0"):
            await self.execute_command("SELECT", db)

    async def _ensure(self) -> None:
        if self._transport is not None:
            return
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect_once())
        await asyncio.shield(self._connecting)

    async def _connect_once(self) -> None:
        try:
            await self._connect()
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        finally:
            self._connecting = None

    def _lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._fail_all(RedisConnectionError(f"Redis connection lost: {exc}"))

    def _fail_all(self, error: Exception) -> None:
        transport = self._transport
        self._transport = None
        self.epoch += 1
        self._protocol = None
        self._outbox.clear()
        pending, self._pending = self._pending, deque()
        for future, _ in pending:
            if not future.done():
                future.set_exception(error)
        if transport is not None:
            transport.abort()

    # -- commands ------------------------------------------------------------------------------

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Send a command; the future resolves to its reply. Not a coroutine: several calls made
        before awaiting any go out in one write (pipelined) and cost one round trip."""
        return self._send(encode_command(args), 0)

    def transaction(self, *commands: bytes) -> asyncio.Future[Any]:
        """MULTI, the ``commands`` (each a whole command encoded once: ``encode_command``), EXEC,
        pipelined like ``call``: the future resolves to EXEC's reply, the replies of the commands
        as of one instant (MULTI's and the QUEUED answers are dropped)."""
        return self._send(b"".join((_MULTI, *commands, _EXEC)), len(commands) + 1)

    def _send(self, data: bytes, dropped: int) -> asyncio.Future[Any]:
        """Queue encoded commands whose replies are ``dropped`` ones and then the future's."""
        if self._transport is None:
            return asyncio.ensure_future(self._send_after_connect(data, dropped))
        loop = self._loop  # not asyncio.get_running_loop(): that is a getpid(2) system call each time
        future: asyncio.Future[Any] = loop.create_future()
        sent = time.monotonic()
        if dropped:
            self._pending.extend([(_DROPPED, sent)] * dropped)
        self._pending.append((future, sent))
        self._outbox.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.timeout / 4, self._check_timeouts)
        return future

    async def _send_after_connect(self, data: bytes, dropped: int) -> Any:
        await self._ensure()
        return await self._send(data, dropped)

    async def execute_command(self, *args: Any) -> Any:
        return await self.call(*args)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._outbox and self._transport is not None:
            data = b"".join(self._outbox)
            self._outbox.clear()
            self._transport.write(data)

    def _check_timeouts(self) -> None:
        self._watchdog = None
        if not self._pending:
            return
        oldest = self._pending[0][1]
        if time.monotonic() - oldest > self.timeout:
            self._fail_all(RedisTimeoutError(f"no reply from Redis within {self.timeout} s"))
            return
        self._watchdog = self._loop.call_later(self.timeout / 4, self._check_timeouts)

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> asyncio.Future[Any]:
        head = self._evalsha.get(sha)
        if head is None:
            head = self._evalsha[sha] = Encoded("EVALSHA", sha)
        return self.call(head, numkeys, *args)

    async def script_load(self, script: str) -> str:
        sha = await self.execute_command("SCRIPT", "LOAD", script)
        return sha.decode() if isinstance(sha, bytes) else str(sha)

    def get(self, key: str) -> asyncio.Future[Any]:
        return self.call("GET", key)

    async def ping(self) -> bool:
        return bool(await self.execute_command("PING"))

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._fail_all(RedisConnectionError("client closed"))
