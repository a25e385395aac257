"""The simulated packet gateway (PGW): many handsets over real UDP, enforcing what quotad says.

Per handset it sends the Access-Request, Accounting-Start, Interim-Updates with cumulative
counters, and the Stop; between them it moves the handset's traffic (simulators/traffic.py)
capped at the rate of the session's speed profile and, on a metered profile, at the slice
granted (Quotad-Granted-Octets). A used-up slice is reported (Interim-Update) and the next one
asked for with an Authorize-Only Access-Request. Its RFC 5176 listener applies CoA-Requests (new
rate and slice, no drop) and Disconnect-Requests (the session ends, Stop sent) and answers ACK, or
NAK with Error-Cause 503 for a session it does not hold. A retransmitted request gets the same
answer again without being applied twice (simulators/dedup.py).

Time comes from the caller: ``tick(now, seconds)`` moves every handset ``seconds`` forward to
``now``. The real-time runner calls it from a timer; a virtual-time scenario moves a settable
clock and calls it as fast as the daemon answers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

from quotad.radius import packet as rp
from simulators import wire
from simulators.client import RadiusClient
from simulators.dedup import ReplyCache
from simulators.handset import Action, Grant, Handset, State
from simulators.trace import TraceEvent
from simulators.traffic import Rate, Traffic, TrafficModel

# What the radio itself carries at most (LTE category 4; 3G HSPA): a profile above it changes
# nothing. quotad keeps no radio type per session, so its CoAs carry the LTE figures to 3G
# sessions too (quotad/aaa/sessions.py); the radio caps them, as a real gateway's would.
RADIO_MAX = {"lte": Rate(150_000_000, 50_000_000), "3g": Rate(14_400_000, 5_760_000)}


def session_rate(h: Handset) -> Rate:
    """The rate a session moves at: its profile's, capped by its radio's."""
    assert h.grant is not None
    radio = RADIO_MAX[h.rat]
    return Rate(min(h.grant.down_bps, radio.down_bps), min(h.grant.up_bps, radio.up_bps))


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a handset, for the report."""

    at: float
    msisdn: str
    kind: str  # accept, reject, timeout, slice, coa, coa-nak, disconnect, stop
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """How a handset uses the network: sessions of ``session_seconds`` (None: until the
    Session-Timeout), ``gap_seconds`` apart."""

    session_seconds: float | None = None
    gap_seconds: float = 60.0


@dataclass(slots=True)
class Device:
    handset: Handset
    traffic: Traffic
    plan: SessionPlan = field(default_factory=SessionPlan)
    number: int = 0
    # One exchange sequence at a time per handset: a Disconnect's Stop must not cross a tick's.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    coa_port: int = 3799  # where the gateway listens for CoA / Disconnect (0: any free port)
    nas: wire.Nas = field(default_factory=wire.Nas)
    timeout: float = 2.0
    retries: int = 2
    interim_interval: int | None = None  # overrides Acct-Interim-Interval of the accepts
    sockets: int = 4  # source ports per server port (each has 256 Identifiers); handset n uses n mod sockets


class _DynAuth(asyncio.DatagramProtocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.DatagramTransport | None = None
        self.replies = ReplyCache()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        key, now = ReplyCache.key(data, addr), time.monotonic()
        reply = self.replies.get(key, now) if key is not None else None
        if reply is not None:
            self.gateway._count("duplicate")  # a retransmission: the same answer, applied once
        else:
            reply = self.gateway.on_dynauth(data)
            if reply is not None and key is not None:
                self.replies.put(key, reply, now)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class Gateway:
    def __init__(self, settings: GatewaySettings, now: Callable[[], float]) -> None:
        self.settings = settings
        self.now = now
        self.devices: list[Device] = []
        self.sessions: dict[str, Device] = {}
        self.events: list[Event] = []
        self._auth = [self._client(settings.auth_port) for _ in range(max(1, settings.sockets))]
        self._acct = [self._client(settings.acct_port) for _ in range(max(1, settings.sockets))]
        self._listener: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.dynauth_counts: dict[str, int] = {}
        self.recording: list[TraceEvent] | None = None  # set to a list to record a replayable trace
        self._record_t0: float | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def _client(self, port: int) -> RadiusClient:
        s = self.settings
        return RadiusClient(s.host, port, s.nas.secret, s.timeout, s.retries)

    def _clients_of(self, device: Device) -> tuple[RadiusClient, RadiusClient]:
        """(auth, acct) clients of a handset: always the same, so its requests keep their source port."""
        n = device.number % len(self._auth)
        return self._auth[n], self._acct[n]

    async def start(self) -> None:
        for client in (*self._auth, *self._acct):
            await client.start()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DynAuth(self), local_addr=(self.settings.nas.ip, self.settings.coa_port)
        )
        self._listener = cast(asyncio.DatagramTransport, transport)

    @property
    def coa_port(self) -> int:
        assert self._listener is not None
        return int(self._listener.get_extra_info("sockname")[1])

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._listener is not None:
            self._listener.close()
        for client in (*self._auth, *self._acct):
            client.close()

    def add(self, handset: Handset, model: TrafficModel, seed: int, plan: SessionPlan | None = None) -> Device:
        device = Device(handset, Traffic(model, random.Random(seed)), plan or SessionPlan(), len(self.devices))
        self.devices.append(device)
        return device

    # --- time -----------------------------------------------------------------------------

    async def tick(self, now: float, seconds: float) -> None:
        """Every handset: move ``seconds`` of traffic, then send what is due at ``now``."""
        await asyncio.gather(*(self._locked(self._advance, d, now, seconds) for d in self.devices))

    async def stop_all(self, now: float) -> None:
        """End every live session (Accounting-Stop with the final counters); no new attaches."""
        for device in self.devices:
            device.plan = SessionPlan(device.plan.session_seconds, -1.0)
        await asyncio.gather(*(self._locked(self._finish, d, now) for d in self.devices))

    async def _finish(self, device: Device, now: float) -> None:
        if device.handset.state is State.ACTIVE:
            device.handset.stop_at = now
            await self._act(device, now)

    async def settle(self) -> None:
        """Wait for Stops triggered by Disconnect-Requests."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    @staticmethod
    async def _locked(step: Callable[..., Awaitable[None]], device: Device, *args: float) -> None:
        async with device.lock:
            await step(device, *args)

    async def _advance(self, device: Device, now: float, seconds: float) -> None:
        h = device.handset
        remaining = seconds
        for _ in range(256):  # bounded: a gateway that keeps granting nothing must not spin
            if remaining <= 0 or h.state is not State.ACTIVE or not h.started or h.grant is None:
                break
            moved = device.traffic.step(remaining, session_rate(h), bool(h.grant.exempt_rule))
            down, up = moved.down, moved.up
            limit = h.room()
            if down + up <= limit:
                h.used(down, up, moved.exempt_down, moved.exempt_up)
                break
            # The slice runs out within the step: move what it allows, then ask for the next one.
            share = limit / (down + up)
            up_part = min(up, limit - int(down * share))
            # exactly the slice: down and up in proportion (and the zero-rated part with them)
            h.used(limit - up_part, up_part, int(moved.exempt_down * share), int(moved.exempt_up * share))
            remaining -= remaining * share
            await self._act(device, now)
        await self._act(device, now)

    async def _act(self, device: Device, now: float) -> None:
        h = device.handset
        for _ in range(8):  # bounded: each action changes the state or the next due time
            action = h.due(now)
            if action is Action.NONE:
                return
            await self._HANDLERS[action](self, device, now)

    # --- actions --------------------------------------------------------------------------

    async def _attach(self, device: Device, now: float) -> None:
        h = device.handset
        h.attach_sent(now)
        self._record(now, h, "attach")
        ex = await self._clients_of(device)[0].request(lambda ident: wire.access_request(h, self.settings.nas, ident))
        if ex.reply is None:
            h.timed_out(now)
            self._event(now, h, "timeout", "Access-Request")
        elif ex.reply.code == rp.ACCESS_ACCEPT:
            grant = self._grant(ex.reply, None)
            h.accepted(grant, now, device.plan.session_seconds)
            self.sessions[h.session_id] = device
            self._event(now, h, "accept", f"{grant.profile} slice {grant.granted}")
        else:
            reason = ex.reply.get_str(rp.REPLY_MESSAGE) or ""
            h.rejected(now, reason)
            self._event(now, h, "reject", reason)

    def _grant(self, reply: rp.Packet, previous: Grant | None) -> Grant:
        grant = wire.grant_of(reply, previous)
        if self.settings.interim_interval:
            grant = replace(grant, interim_interval=self.settings.interim_interval)
        return grant

    async def _accounting(self, device: Device, now: float, status: int) -> bool:
        h = device.handset
        client = self._clients_of(device)[1]
        ex = await client.request(lambda ident: wire.accounting_request(h, self.settings.nas, ident, status, now))
        return ex.reply is not None and ex.reply.code == rp.ACCOUNTING_RESPONSE

    async def _start(self, device: Device, now: float) -> None:
        if not await self._accounting(device, now, wire.ACCT_START):
            self._event(now, device.handset, "timeout", "Accounting-Start")
        device.handset.start_acked()  # the session is up either way; the interims carry the counters

    async def _interim(self, device: Device, now: float) -> None:
        device.handset.interim_sent(now)
        self._record(now, device.handset, "interim")
        await self._accounting(device, now, wire.ACCT_INTERIM)

    async def _reauth(self, device: Device, now: float) -> None:
        h = device.handset
        await self._interim(device, now)  # report the used-up slice first: quotad debits it
        h.reauth_sent()
        self._record(now, h, "reauth")
        client = self._clients_of(device)[0]
        ex = await client.request(lambda ident: wire.access_request(h, self.settings.nas, ident, reauth=True))
        if ex.reply is not None and ex.reply.code == rp.ACCESS_ACCEPT:
            h.reauthorized(self._grant(ex.reply, h.grant))
            assert h.grant is not None
            self._event(now, h, "slice", f"{h.grant.profile} slice {h.grant.granted}")
        else:
            h.reauth_failed()
            self._event(now, h, "reauth-failed", "" if ex.reply is None else ex.reply.get_str(rp.REPLY_MESSAGE) or "")

    async def _stop(self, device: Device, now: float) -> None:
        h = device.handset
        h.stop_sent(now)
        self._record(now, h, "stop")
        await self._accounting(device, now, wire.ACCT_STOP)
        self.sessions.pop(h.session_id, None)
        self._event(now, h, "stop", f"cause {h.terminate_cause} in {h.octets_in} out {h.octets_out}")
        gap = device.plan.gap_seconds
        h.stopped(now, None if gap < 0 else now + gap)

    _HANDLERS: ClassVar[dict[Action, Callable[[Gateway, Device, float], Awaitable[None]]]] = {
        Action.ATTACH: _attach,
        Action.START: _start,
        Action.INTERIM: _interim,
        Action.REAUTH: _reauth,
        Action.STOP: _stop,
    }

    async def probe_attach(self, msisdn: str, now: float) -> tuple[bool, str]:
        """One Access-Request for a handset's SIM, as a new session beside its own (which it does
        not touch): (True, the speed profile) if accepted, else (False, the Reply-Message, or
        "no answer"). For a public-safety SIM quotad writes nothing; a consumer SIM's accepted
        probe is a session of its own (a slice drawn, an address leased, no accounting)."""
        device = next(d for d in self.devices if d.handset.msisdn == msisdn)
        h = device.handset
        probe = replace(h, state=State.IDLE, grant=None, fixed_session_id=f"probe-{msisdn}-{int(now)}")
        client = self._clients_of(device)[0]
        ex = await client.request(lambda ident: wire.access_request(probe, self.settings.nas, ident))
        if ex.reply is None:
            return False, "no answer"
        if ex.reply.code == rp.ACCESS_ACCEPT:
            return True, wire.grant_of(ex.reply).profile
        return False, ex.reply.get_str(rp.REPLY_MESSAGE) or ""

    # --- CoA / Disconnect (RFC 5176) ------------------------------------------------------

    def on_dynauth(self, datagram: bytes) -> bytes | None:
        """Apply a CoA or Disconnect-Request; the ACK/NAK to send, or None to discard it."""
        secret = self.settings.nas.secret
        request = wire.parse_dynauth(datagram, secret)
        if request is None:
            self._count("discarded")
            return None
        device = self._find(request)
        kind = "coa" if request.is_coa else "disconnect"
        h = device.handset if device is not None else None
        now = self.now()
        if request.is_coa:
            ok = h is not None and h.coa(self._grant(request.packet, h.grant))
        else:
            ok = h is not None and h.disconnected()
        self._count(f"{kind}-{'ack' if ok else 'nak'}")
        if not ok or h is None or device is None:
            return wire.dynauth_reply(request, False, secret, wire.ERROR_SESSION_NOT_FOUND)
        if request.is_coa:
            assert h.grant is not None
            self._event(now, h, "coa", f"{h.grant.profile} slice {h.grant.granted}")
        else:
            self._event(now, h, "disconnect")
            task = asyncio.ensure_future(self._locked(self._act, device, now))  # the Stop goes out at once
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return wire.dynauth_reply(request, True, secret)

    def _find(self, request: wire.DynAuthRequest) -> Device | None:
        if request.session_id is not None:
            return self.sessions.get(request.session_id)
        live = [d for d in self.sessions.values() if d.handset.msisdn == request.msisdn]
        return live[0] if len(live) == 1 else None

    def _count(self, what: str) -> None:
        self.dynauth_counts[what] = self.dynauth_counts.get(what, 0) + 1

    def _record(self, now: float, h: Handset, event: str) -> None:
        if self.recording is None:
            return
        if self._record_t0 is None:
            self._record_t0 = now
        self.recording.append(TraceEvent(
            round(now - self._record_t0, 3), event, h.session_id, h.msisdn, h.imsi, h.imeisv, h.rat, h.auth,
            h.octets_in, h.octets_out, h.terminate_cause,
        ))

    def _event(self, now: float, h: Handset, kind: str, detail: str = "") -> None:
        self.events.append(Event(now, h.msisdn, kind, detail))
