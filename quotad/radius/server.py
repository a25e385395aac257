"""The RADIUS UDP edge: socket → packet → handler → socket, bounded.

Per datagram, in this order (each failure is dropped and counted by reason, never answered):
unknown source address → malformed packet (also counted by cause) → wrong code for this port (the
port's request code or Status-Server) → a Proxy-State flood (more than a reply could copy back) →
missing or bad Message-Authenticator on an Access-Request (BlastRADIUS, R-70) or a Status-Server
(RFC 5997 §3) → bad Request Authenticator on an Accounting-Request → retransmission (RFC 5080: the
cached reply is resent, or the copy dropped while the original is in progress) → overload (more
than ``max_inflight`` requests in progress).
Everything else is handed to the port's handler as a task; its reply is sent and cached. A handler
that returns None sends nothing: the gateway retries (used when a reply cannot be stored, R-71).

Status-Server (RFC 5997) is answered here, at once, and never reaches a handler or the reply
cache: Access-Accept on the authentication port, Accounting-Response on the accounting port, each
with Message-Authenticator, counted ``quotad_radius_requests_total{kind="status",outcome="ready"}``.
While ``ready()`` says the process cannot serve (Redis down) it is not answered (counted
``not_ready``), so the gateway's probe times out and it fails over to another server.
"""

from __future__ import annotations

import asyncio
import socket
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from quotad import log, metrics
from quotad.radius import packet as rp
from quotad.radius.clients import Client, ClientTable
from quotad.radius.codes import Code
from quotad.radius.reasons import Drop
from quotad.radius.replycache import IN_PROGRESS, Key, ReplyCache, request_key
from quotad.radius.reuseport import spread_by_identifier

Handler = Callable[[rp.Packet, Client], Awaitable[bytes | None]]
Ready = Callable[[], bool]

_log = log.get("quotad.radius")

_KIND = {rp.ACCESS_REQUEST: "access", rp.ACCOUNTING_REQUEST: "accounting"}
# Requests that must carry a valid Message-Authenticator: Access-Request (BlastRADIUS, R-70) and
# Status-Server (RFC 5997 §3).
MA_REQUIRED = frozenset((rp.ACCESS_REQUEST, rp.STATUS_SERVER))
# The answer to Status-Server by the port's request code (RFC 5997).
STATUS_REPLY = {rp.ACCESS_REQUEST: rp.ACCESS_ACCEPT, rp.ACCOUNTING_REQUEST: rp.ACCOUNTING_RESPONSE}

# Every Proxy-State is copied into the reply (RFC 2865 §5.33), which must fit in 4096 octets with
# quotad's own attributes (~300 octets at most): a request carrying more is dropped, not failed late.
MAX_PROXY_STATE_OCTETS = 2048
MALFORMED_CAUSES = ("short", "length", "attribute")


@dataclass(slots=True)
class Limits:
    max_inflight: int = 4096
    rcvbuf_bytes: int = 4 * 1024 * 1024


class Drops:
    """Pre-bound drop counters (one label lookup at start, not per packet)."""

    def __init__(self) -> None:
        self.by_reason = {reason: metrics.RADIUS_DROPS.labels(reason) for reason in Drop}
        self.malformed = {cause: metrics.RADIUS_MALFORMED.labels(cause) for cause in MALFORMED_CAUSES}
        self.dup_resent = metrics.RADIUS_DUPLICATES.labels("resent")
        self.dup_dropped = metrics.RADIUS_DUPLICATES.labels("dropped_in_progress")

        self._last_log: dict[Drop, float] = {}
        self._suppressed: dict[Drop, int] = {}

    def count(self, reason: Drop, source: str = "", detail: str = "") -> None:
        """Count a drop; log it at info, at most once a second per reason (a flood is not a log flood)."""
        self.by_reason[reason].inc()
        now = time.monotonic()
        if now - self._last_log.get(reason, -1e9) < 1.0:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last_log[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        _log.info("radius_drop", reason=reason, source=source, detail=detail, suppressed=suppressed)


def always_ready() -> bool:
    return True


def status_reply(pkt: rp.Packet, secret: bytes, code: int) -> bytes:
    """The answer to a Status-Server (RFC 5997 §3): ``code`` (Access-Accept or Accounting-Response)
    signed with Message-Authenticator over the request's authenticator, its Proxy-States copied."""
    return rp.encode_response(
        code, pkt.identifier, pkt.authenticator, secret, b"", pkt.get_all(rp.PROXY_STATE),
        request_code=rp.STATUS_SERVER,
    )


class RadiusProtocol(asyncio.DatagramProtocol):
    """One listening socket; ``code`` is the request code this port accepts (and Status-Server).
    ``ready`` says whether this process can serve requests now (Status-Server is answered only then)."""

    def __init__(
        self, code: int, handler: Handler, clients: ClientTable, cache: ReplyCache, limits: Limits,
        ready: Ready = always_ready,
    ):
        self.code = code
        self.kind = _KIND[code]
        self.ready = ready
        self.status_code = STATUS_REPLY[code]
        self.status_answered = metrics.RADIUS_REQUESTS.labels("status", "ready")
        self.handler = handler
        self.clients = clients
        self.cache = cache
        self.limits = limits
        self.inflight = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.loop: asyncio.AbstractEventLoop  # set in connection_made
        self.tasks: set[asyncio.Task[None]] = set()
        self.drops = Drops()
        self.latency = metrics.RADIUS_LATENCY.labels(self.kind)
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)
        # asyncio.get_running_loop() is a getpid(2) system call each time (its fork check): once here
        self.loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.limits.rcvbuf_bytes)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.closing:
            return
        client = self.clients.find(addr[0])
        if client is None:
            self._drop(Drop.UNKNOWN_CLIENT, addr)
            return
        try:
            pkt = rp.decode(data)
        except rp.PacketError as exc:
            self.drops.malformed[exc.reason].inc()
            self._drop(Drop.MALFORMED, addr, detail=exc.reason)
            return
        if pkt.code != self.code and pkt.code != rp.STATUS_SERVER:
            self._drop(Drop.WRONG_CODE, addr, detail=Code.name_of(pkt.code))
            return
        if len(pkt.raw) > 20 + MAX_PROXY_STATE_OCTETS and proxy_state_octets(pkt) > MAX_PROXY_STATE_OCTETS:
            self._drop(Drop.PROXY_STATE, addr)
            return
        if not self._authentic(pkt, client, addr):
            return
        if pkt.code == rp.STATUS_SERVER:
            self._status(pkt, client, addr)
            return
        key = request_key(addr[0], addr[1], data)
        now = time.monotonic()
        cached = self.cache.lookup(key, now)
        if cached is not None:
            self._duplicate(cached, addr)
            return
        if self.inflight >= self.limits.max_inflight:
            self._drop(Drop.OVERLOAD, addr)
            return
        self.cache.begin(key, now)
        self.inflight += 1
        task = self.loop.create_task(self._serve(pkt, client, addr, key, now))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _authentic(self, pkt: rp.Packet, client: Client, addr: tuple[str, int]) -> bool:
        ma = rp.verify_message_authenticator(pkt, client.secret)
        if pkt.code in MA_REQUIRED:
            if ma is None:
                self._drop(Drop.NO_MESSAGE_AUTHENTICATOR, addr)
                return False
        elif not rp.verify_request_authenticator(pkt, client.secret):
            self._drop(Drop.BAD_AUTHENTICATOR, addr)
            return False
        if ma is False:
            self._drop(Drop.BAD_AUTHENTICATOR, addr)
            return False
        return True

    def _status(self, pkt: rp.Packet, client: Client, addr: tuple[str, int]) -> None:
        """Answer a Status-Server at once (no handler, no reply cache), unless not ready."""
        if not self.ready():
            self._drop(Drop.NOT_READY, addr, detail="Status-Server")
            return
        assert self.transport is not None
        self.transport.sendto(status_reply(pkt, client.secret, self.status_code), addr)
        self.status_answered.inc()

    def _duplicate(self, cached: bytes, addr: tuple[str, int]) -> None:
        if cached is IN_PROGRESS or not cached:
            self.drops.dup_dropped.inc()
            self.drops.count(Drop.DUPLICATE, addr[0])
            return
        self.drops.dup_resent.inc()
        assert self.transport is not None
        self.transport.sendto(cached, addr)

    async def _serve(
        self, pkt: rp.Packet, client: Client, addr: tuple[str, int], key: Key,
        started: float,
    ) -> None:
        reply: bytes | None = None
        try:
            reply = await self.handler(pkt, client)
        except Exception:
            _log.exception("handler_failed", kind=self.kind, client=client.name)
        finally:
            self.inflight -= 1
            self.cache.finish(key, reply)
        if reply is None:
            self.drops.count(Drop.NO_REPLY, addr[0])
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)
        self.latency.observe(time.monotonic() - started)

    def _drop(self, reason: Drop, addr: tuple[str, int], detail: str = "") -> None:
        self.drops.count(reason, addr[0], detail)

    async def drain(self, timeout: float) -> None:
        """Stop taking requests; wait for those in progress to be answered (clean shutdown)."""
        self.closing = True
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)


def proxy_state_octets(pkt: rp.Packet) -> int:
    """Octets the request's Proxy-State attributes take on the wire (and would take in the reply)."""
    return sum(len(v) + 2 for t, v in pkt.attrs if t == rp.PROXY_STATE)


async def listen(
    host: str, port: int, protocol: RadiusProtocol, workers: int = 1
) -> tuple[asyncio.DatagramTransport, int]:
    """Bind a UDP socket; return transport and port. With ``workers`` > 1 it joins the workers'
    SO_REUSEPORT group, whose requests are spread over them by Identifier (quotad.radius.reuseport),
    so one gateway socket's load reaches every worker. With one worker the port is exclusive: a
    second process binding it fails (EADDRINUSE) instead of silently taking part of its requests."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if workers > 1 and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if workers > 1 and not spread_by_identifier(sock, workers):
        _log.warning("reuseport_spread_unavailable", port=port, workers=workers,
                     detail="requests spread by source address and port")
    sock.setblocking(False)
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    return transport, int(sock.getsockname()[1])
