"""``quotad-sim replay``: send a trace's session events with their original timing, or scaled.

Each session's events go out in order from one task (an interim needs the Class of the session's
accept); sessions run side by side. Event ``t`` is sent at ``start + t / speed``; when a reply
takes longer than the gap to the session's next event, that event goes late and the lateness is
reported. With a CoA port, the replay also answers quotad's CoA and Disconnect-Requests (RFC 5176):
ACK for a session the trace has up (the trace itself is not changed), NAK 503 otherwise; what
arrived is in the result.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from quotad.radius import packet as rp
from simulators import wire
from simulators.client import Exchange, RadiusClient
from simulators.handset import Handset
from simulators.trace import TraceEvent


@dataclass(frozen=True, slots=True)
class Sent:
    """One event as replayed: when it was due and sent (seconds from the start) and how it ended."""

    event: TraceEvent
    due: float
    sent: float
    outcome: str  # accept, reject, response, timeout, skipped (its session was not accepted)
    latency: float


@dataclass(slots=True)
class ReplayResult:
    speed: float
    sent: list[Sent] = field(default_factory=list)
    wall: float = 0.0
    dynauth: list[tuple[str, str, bool]] = field(default_factory=list)  # (kind, session, acked)

    def outcomes(self) -> dict[str, int]:
        return dict(Counter(s.outcome for s in self.sent))

    def max_late(self) -> float:
        return max((s.sent - s.due for s in self.sent), default=0.0)


@dataclass(frozen=True, slots=True)
class Target:
    host: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    nas: wire.Nas = field(default_factory=wire.Nas)
    timeout: float = 2.0
    retries: int = 2
    coa_port: int | None = None  # listen for CoA / Disconnect here (None: do not)


class _DynAuth(asyncio.DatagramProtocol):
    def __init__(self, secret: bytes, live: set[str], result: ReplayResult) -> None:
        self.secret, self.live, self.result = secret, live, result
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = wire.parse_dynauth(data, self.secret)
        if request is None or self.transport is None:
            return
        ok = request.session_id in self.live
        self.result.dynauth.append(("coa" if request.is_coa else "disconnect", request.session_id or "", ok))
        cause = None if ok else wire.ERROR_SESSION_NOT_FOUND
        self.transport.sendto(wire.dynauth_reply(request, ok, self.secret, cause), addr)


async def replay(events: list[TraceEvent], target: Target, speed: float = 1.0) -> ReplayResult:
    """Send every event at its (scaled) time; the result lists each with its timing and outcome."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    auth = RadiusClient(target.host, target.auth_port, target.nas.secret, target.timeout, target.retries)
    acct = RadiusClient(target.host, target.acct_port, target.nas.secret, target.timeout, target.retries)
    await auth.start()
    await acct.start()
    result = ReplayResult(speed)
    live: set[str] = set()
    listener = None
    if target.coa_port is not None:
        listener, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _DynAuth(target.nas.secret, live, result), local_addr=(target.nas.ip, target.coa_port)
        )
    by_session: dict[str, list[TraceEvent]] = defaultdict(list)
    for event in events:
        by_session[event.session].append(event)
    start = time.monotonic()
    try:
        player = _Player(target.nas, auth, acct, start, speed, result, live)
        await asyncio.gather(*(player.session(evs) for evs in by_session.values()))
    finally:
        auth.close()
        acct.close()
        if listener is not None:
            listener.close()
    result.wall = time.monotonic() - start
    result.sent.sort(key=lambda s: (s.due, s.event.line))
    return result


@dataclass
class _Player:
    nas: wire.Nas
    auth: RadiusClient
    acct: RadiusClient
    start: float
    speed: float
    result: ReplayResult
    live: set[str]

    async def session(self, events: list[TraceEvent]) -> None:
        first = events[0]
        h = Handset(first.msisdn, first.imsi, first.imeisv or "0000000000000000", rat=first.rat, auth=first.auth,
                    fixed_session_id=first.session)
        up = False
        for event in events:
            due = event.t / self.speed
            await asyncio.sleep(max(0.0, self.start + due - time.monotonic()))
            sent = time.monotonic() - self.start
            if event.event != "attach" and not up:
                self.result.sent.append(Sent(event, due, sent, "skipped", 0.0))
                continue
            ex, outcome = await self._send(h, event)
            up = outcome == "accept" if event.event == "attach" else up and event.event != "stop"
            (self.live.add if up else self.live.discard)(event.session)
            self.result.sent.append(Sent(event, due, sent, outcome, ex.latency))

    async def _send(self, h: Handset, event: TraceEvent) -> tuple[Exchange, str]:
        now = time.time()
        if event.event in ("attach", "reauth"):
            reauth = event.event == "reauth"
            ex = await self.auth.request(lambda ident: wire.access_request(h, self.nas, ident, reauth=reauth))
            outcome = _outcome(ex)
            if ex.reply is not None and ex.reply.code == rp.ACCESS_ACCEPT:
                h.grant = wire.grant_of(ex.reply, h.grant)
                if not reauth:
                    h.started_at = now
                    h.octets_in = h.octets_out = 0
                    await self._accounting(h, wire.ACCT_START, now)
            return ex, outcome
        h.octets_in, h.octets_out = event.input_octets, event.output_octets
        h.terminate_cause = event.cause
        status = wire.ACCT_STOP if event.event == "stop" else wire.ACCT_INTERIM
        return await self._accounting(h, status, now)

    async def _accounting(self, h: Handset, status: int, now: float) -> tuple[Exchange, str]:
        ex = await self.acct.request(lambda ident: wire.accounting_request(h, self.nas, ident, status, now))
        return ex, _outcome(ex)


def _outcome(ex: Exchange) -> str:
    if ex.reply is None:
        return ex.error or "timeout"
    return {rp.ACCESS_ACCEPT: "accept", rp.ACCESS_REJECT: "reject", rp.ACCOUNTING_RESPONSE: "response"}.get(
        ex.reply.code, f"code-{ex.reply.code}"
    )
