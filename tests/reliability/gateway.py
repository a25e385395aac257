"""A simulated packet gateway for the fault tests: attaches sessions, then sends Interim-Updates
with cumulative counters the way a PGW does (retransmitting a report a few times when it gets no
answer, then moving on to the next one), and remembers exactly what was acknowledged."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import redis as sync_redis

from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.radius import packet as rp

SECRET = b"testing123"
STEP = 10_000  # octets each report adds


@dataclass
class Session:
    sid: str
    msisdn: str
    klass: bytes = b""
    framed_ip: str = ""
    sent: int = 0  # cumulative octets of the last report sent
    acked: int = 0  # cumulative octets of the last report acknowledged


@dataclass
class Gateway:
    auth_port: int
    acct_port: int
    sessions: list[Session]
    retry_interval: float = 0.3
    tries: int = 3
    ack_times: list[float] = field(default_factory=list)
    sent_reports: int = 0
    acked_reports: int = 0
    _ident: int = 0
    _sock: socket.socket | None = None
    _waiters: dict[int, asyncio.Future[bytes]] = field(default_factory=dict)

    async def __aenter__(self) -> Gateway:
        loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        loop.add_reader(self._sock.fileno(), self._readable)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._sock is not None
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                return
            waiter = self._waiters.get(data[1]) if len(data) > 1 else None
            if waiter is not None and not waiter.done():
                waiter.set_result(data)

    def _next_ident(self) -> int:
        for _ in range(256):
            self._ident = (self._ident + 1) % 256
            if self._ident not in self._waiters:
                return self._ident
        raise RuntimeError("256 requests in flight")

    async def request(self, port: int, datagram: bytes, ident: int, auth: bytes, tries: int) -> rp.Packet | None:
        """Send, retransmitting the same datagram (RFC 5080) until a verified answer or ``tries``."""
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._waiters[ident] = future
        try:
            for _ in range(tries):
                self._sock.sendto(datagram, ("127.0.0.1", port))
                try:
                    raw = await asyncio.wait_for(asyncio.shield(future), self.retry_interval)
                except TimeoutError:
                    continue
                reply = rp.decode(raw)
                assert rp.verify_response_authenticator(reply, auth, SECRET), "reply does not verify"
                return reply
            return None
        finally:
            del self._waiters[ident]

    async def attach(self, session: Session, tries: int = 10) -> rp.Packet | None:
        ident = self._next_ident()
        authenticator = os.urandom(16)
        attrs = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.pap_attr(b"iij", SECRET, authenticator)
                 + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp") + rp.attr(rp.CALLING_STATION_ID, session.msisdn.encode())
                 + rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1]))
                 + rp.attr(rp.ACCT_SESSION_ID, session.sid.encode()))
        datagram, auth = rp.encode_request(rp.ACCESS_REQUEST, ident, SECRET, attrs, authenticator=authenticator)
        reply = await self.request(self.auth_port, datagram, ident, auth, tries)
        if reply is not None and reply.code == rp.ACCESS_ACCEPT:
            session.klass = reply.get(rp.CLASS) or b""
            ip = reply.get(rp.FRAMED_IP_ADDRESS)
            session.framed_ip = ".".join(str(b) for b in ip) if ip else ""
        return reply

    async def report(self, session: Session, status: int = 3, tries: int | None = None) -> bool:
        """One report of the session's next cumulative total; True if acknowledged."""
        session.sent += STEP if status != 1 else 0
        total = session.sent
        ident = self._next_ident()
        attrs = (rp.attr_int(rp.ACCT_STATUS_TYPE, status) + rp.attr(rp.ACCT_SESSION_ID, session.sid.encode())
                 + rp.attr(rp.CALLING_STATION_ID, session.msisdn.encode())
                 + rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1]))
                 + rp.attr_int(rp.ACCT_INPUT_OCTETS, total & 0xFFFFFFFF)
                 + rp.attr_int(rp.ACCT_INPUT_GIGAWORDS, total >> 32) + rp.attr(rp.CLASS, session.klass))
        datagram, auth = rp.encode_request(rp.ACCOUNTING_REQUEST, ident, SECRET, attrs, message_authenticator=False)
        self.sent_reports += 1
        reply = await self.request(self.acct_port, datagram, ident, auth, tries or self.tries)
        if reply is None:
            return False
        assert reply.code == rp.ACCOUNTING_RESPONSE
        self.acked_reports += 1
        self.ack_times.append(time.monotonic())
        session.acked = max(session.acked, total)
        return True

    async def load(self, seconds: float, interval: float = 0.02, stop: asyncio.Event | None = None) -> None:
        """Every session reports every ``interval`` for ``seconds``, or until ``stop`` is set."""
        deadline = time.monotonic() + seconds

        async def one(session: Session) -> None:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                started = time.monotonic()
                await self.report(session)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        await asyncio.gather(*(one(s) for s in self.sessions))

    async def settle(self, timeout: float = 15.0) -> None:
        """Each session's last report, retried until acknowledged: afterwards what quotad counted
        must be exactly the sum of the sessions' last cumulative totals."""
        deadline = time.monotonic() + timeout

        async def one(session: Session) -> None:
            while time.monotonic() < deadline:
                if await self.report(session, tries=3):
                    return
            raise AssertionError(f"session {session.sid}: last report never acknowledged")

        await asyncio.gather(*(one(s) for s in self.sessions))

    @property
    def expected_octets(self) -> int:
        return sum(s.acked for s in self.sessions)


def counted_octets(client: sync_redis.Redis, contract_id: str, msisdns: list[str]) -> int:
    """What quotad counted for these lines: high + low usage over the 3-day window (a Japan day may
    turn during the test)."""
    days = cal.window_day_keys(time.time())
    ck = k.ContractKeys(contract_id)
    total = 0
    for msisdn in msisdns:
        for day in days:
            high, low = client.hmget(ck.usage(msisdn, day), ["high", "low"])
            total += int(high or 0) + int(low or 0)
    return total


async def provision(url: str, contract_id: str, msisdns: list[str], plan: str = "family_share") -> None:
    """A contract with the given lines (through the store, as the API would)."""
    from quotad.policy.plans import default_catalog
    from quotad.quota.model import QuotaSettings
    from quotad.quota.store import QuotaStore
    from tests.redis_client import make_client

    store = QuotaStore(make_client(url), QuotaSettings(), default_catalog())
    try:
        await store.load_scripts()
        now = time.time()
        today = dt.datetime.fromtimestamp(now, dt.timezone(dt.timedelta(hours=9))).date()
        await store.provisioning.create_contract(contract_id, plan, today, now)
        for msisdn in msisdns:
            n = int(msisdn[-6:])
            await store.provisioning.add_line(contract_id, msisdn, f"898110{n:013d}", f"44010{n:010d}", "nano", False,
                                              now)
    finally:
        await store.close()
