"""RFC 5176 Dynamic Authorization client: CoA-Request (R-21, R-24) and Disconnect-Request (R-30).

One UDP socket serves every gateway. A reply is matched to its request by the gateway's address
and the Identifier, then checked: Response Authenticator, and Message-Authenticator when present
(R-70). A reply that fails is ignored and counted; the request keeps waiting for a valid reply or
its timeout. Unanswered requests are retransmitted with exponential backoff.

Bounds, so a gateway that never answers costs nothing to the others: each gateway has at most
``max_pending`` requests outstanding (beyond that a request is not sent: "dropped_queue_full"),
and 256 Identifiers; a request that finds all 256 in use waits for one at most ``timeout``.
The bound is per gateway, not global, because a global one would let a silent gateway take every
slot and starve the answering ones; gateways come from configuration, so the total is bounded too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import cast

from quotad import log, metrics
from quotad.radius import packet as rp
from quotad.radius.reasons import BadReply, CoaOutcome

SecretLookup = Callable[[str], tuple[bytes, int] | None]
Address = tuple[str, int]

_log = log.get("quotad.coa")

# kind → (request code, ACK code, NAK code)
_CODES = {
    "coa": (rp.COA_REQUEST, rp.COA_ACK, rp.COA_NAK),
    "disconnect": (rp.DISCONNECT_REQUEST, rp.DISCONNECT_ACK, rp.DISCONNECT_NAK),
}
_IDENTIFIERS = 256
# Room left for the header (20) and the Message-Authenticator (18).
_MAX_ATTRS = rp.MAX_PACKET - 38


@dataclass(frozen=True, slots=True)
class SessionTarget:
    """The session to act on, by the identification attributes of RFC 5176 §3.

    ``nas_ip`` is also where the request is sent (to the CoA port ``secret_for`` gives).
    """

    session_id: str
    nas_ip: str
    framed_ip: str | None = None
    user_name: str | None = None
    calling_station_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request ended; ``attempts`` counts datagrams sent (0 if none was)."""

    kind: str
    outcome: CoaOutcome
    error_cause: int | None
    attempts: int


class _Refused(Exception):
    """A request that cannot be sent at all; ``reason`` goes to the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Job:
    """One request's identity for outcome, metrics and log."""

    kind: str
    target: SessionTarget
    started: float  # time.monotonic()


@dataclass(slots=True)
class _Pending:
    codes: tuple[int, int]  # ACK, NAK
    request_auth: bytes
    secret: bytes
    reply: asyncio.Future[rp.Packet | None]  # None: the client closed


class _Gateway:
    """One gateway's Identifiers (free, in use, awaited) and its requests admitted."""

    __slots__ = ("addr", "admitted", "free_ids", "inflight", "waiters")

    def __init__(self, addr: Address) -> None:
        self.addr = addr
        # FIFO: the Identifier reused is the one idle longest, which keeps a late reply to an
        # old request from meeting a new one with the same Identifier as far as possible.
        self.free_ids: deque[int] = deque(range(_IDENTIFIERS))
        self.inflight: dict[int, _Pending] = {}
        self.waiters: deque[asyncio.Future[int | None]] = deque()
        self.admitted = 0

    async def acquire(self, timeout: float) -> int | None:
        """A free Identifier, waiting at most ``timeout`` for one; None if none came."""
        if self.free_ids:
            return self.free_ids.popleft()
        waiter: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await asyncio.wait((waiter,), timeout=timeout)
        except BaseException:
            ident = self._withdraw(waiter)
            if ident is not None:  # handed over just as we were cancelled: give it back
                self.release(ident)
            raise
        return self._withdraw(waiter)

    def release(self, ident: int) -> None:
        """Hand ``ident`` to the longest waiter, or put it back on the free list."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(ident)
                return
        self.free_ids.append(ident)

    def abort(self) -> None:
        """End every wait: requests in flight see no reply, waiters get no Identifier."""
        for pending in self.inflight.values():
            if not pending.reply.done():
                pending.reply.set_result(None)
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _withdraw(self, waiter: asyncio.Future[int | None]) -> int | None:
        """The Identifier handed to ``waiter``, if any; otherwise cancel it and leave the queue."""
        if waiter.done():
            return None if waiter.cancelled() else waiter.result()
        waiter.cancel()
        with suppress(ValueError):
            self.waiters.remove(waiter)  # O(waiters), bounded by max_pending; on timeout only
        return None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket; the request's own timeout deals with them.
        _log.debug("coa_socket_error", error=str(exc))


class DynamicAuthClient:
    """Sends CoA-Requests and Disconnect-Requests and waits for their ACK or NAK.

    ``secret_for(nas_ip)`` gives the gateway's shared secret and CoA port, or None for an
    unknown gateway (outcome "error"). ``timeout`` is the first attempt's; each retry waits
    ``backoff`` times longer, up to ``max_timeout``; ``retries`` retransmissions follow the first
    attempt.
    ``max_pending`` bounds the requests outstanding per gateway; ``rcvbuf_bytes`` sizes the
    socket's receive buffer; ``now`` gives Event-Timestamp (seconds since the epoch).
    """

    def __init__(
        self,
        secret_for: SecretLookup,
        timeout: float = 1.0,
        retries: int = 3,
        max_pending: int = 10000,
        bind_host: str = "0.0.0.0",
        *,
        bind_port: int = 0,
        max_timeout: float = 8.0,
        backoff: float = 2.0,
        rcvbuf_bytes: int = 4 * 1024 * 1024,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._secret_for = secret_for
        self._timeout = timeout
        self._retries = retries
        self._max_pending = max_pending
        self._bind = (bind_host, bind_port)
        self._max_timeout = max(max_timeout, timeout)
        self._backoff = max(backoff, 1.0)
        self._rcvbuf = rcvbuf_bytes
        self._now = now
        self._transport: asyncio.DatagramTransport | None = None
        self._gateways: dict[Address, _Gateway] = {}
        self._count = {(k, o): metrics.COA_REQUESTS.labels(k, o) for k in _CODES for o in CoaOutcome}
        self._retry = {k: metrics.COA_RETRIES.labels(k) for k in _CODES}
        self._duration = {k: metrics.COA_DURATION.labels(k) for k in _CODES}
        self._bad = {r: metrics.COA_BAD_REPLIES.labels(r) for r in BadReply}
        self._drop_logged_at = -1e9
        self._drops_unlogged = 0

    def use_secrets(self, secret_for: SecretLookup) -> None:
        """Look gateways up in a new table from now on (a configuration reload). A request under
        way keeps the secret and port it started with, retransmissions included."""
        self._secret_for = secret_for

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the client's UDP socket (an ephemeral port unless ``bind_port`` is given)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._on_datagram), local_addr=self._bind)
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Replies come in bursts (many requests answered at once); the default buffer
            # (~200 KB, a few hundred small datagrams) overflows and the kernel drops replies.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)

    @property
    def local_address(self) -> Address:
        """The socket's (host, port); requests come from it."""
        if self._transport is None:
            raise RuntimeError("DynamicAuthClient not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    async def close(self) -> None:
        """Close the socket; requests still outstanding end with outcome "error"."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        for gw in self._gateways.values():
            gw.abort()

    # --- public requests ------------------------------------------------------------------

    async def coa(self, target: SessionTarget, attributes: bytes) -> Outcome:
        """CoA-Request: identification attributes, Event-Timestamp, then ``attributes``
        (pre-encoded, e.g. the new speed profile's); Message-Authenticator first."""
        return await self._send("coa", target, attributes)

    async def disconnect(self, target: SessionTarget) -> Outcome:
        """Disconnect-Request: identification attributes and Event-Timestamp."""
        return await self._send("disconnect", target, b"")

    async def send_all(self, targets: Iterable[SessionTarget], attributes: bytes) -> list[Outcome]:
        """One CoA-Request per target, all at once; outcomes in the order of ``targets``."""
        return list(await asyncio.gather(*(self.coa(t, attributes) for t in targets)))

    async def disconnect_all(self, targets: Iterable[SessionTarget]) -> list[Outcome]:
        """One Disconnect-Request per target, all at once; outcomes in order."""
        return list(await asyncio.gather(*(self.disconnect(t) for t in targets)))

    # --- one request ----------------------------------------------------------------------

    async def _send(self, kind: str, target: SessionTarget, extra: bytes) -> Outcome:
        job = _Job(kind, target, time.monotonic())
        try:
            addr, secret = self._destination(target)
            body = self._body(target, extra)
        except _Refused as exc:
            _log.info("coa_error", kind=kind, gateway=target.nas_ip, session_id=target.session_id, reason=exc.reason)
            return self._finish(job, CoaOutcome.ERROR)
        gw = self._gateways.get(addr)
        if gw is None:
            gw = self._gateways[addr] = _Gateway(addr)
        if gw.admitted >= self._max_pending:
            return self._dropped(job)
        gw.admitted += 1
        metrics.COA_QUEUE_DEPTH.inc()
        try:
            return await self._with_identifier(job, gw, secret, body)
        finally:
            gw.admitted -= 1
            metrics.COA_QUEUE_DEPTH.dec()

    def _destination(self, target: SessionTarget) -> tuple[Address, bytes]:
        if self._transport is None:
            raise _Refused("client_not_running")
        found = self._secret_for(target.nas_ip)
        if found is None:
            raise _Refused("unknown_gateway")
        secret, port = found
        return (str(_ipv4(target.nas_ip)), port), secret

    def _body(self, target: SessionTarget, extra: bytes) -> bytes:
        """Identification attributes (RFC 5176 §3), Event-Timestamp (§3.5), then ``extra``."""
        if not target.session_id:
            raise _Refused("no_session_id")
        parts = [rp.attr(rp.NAS_IP_ADDRESS, _ipv4(target.nas_ip).packed)]
        try:
            if target.user_name:
                parts.append(rp.attr(rp.USER_NAME, target.user_name.encode()))
            if target.calling_station_id:
                parts.append(rp.attr(rp.CALLING_STATION_ID, target.calling_station_id.encode()))
            if target.framed_ip:
                parts.append(rp.attr(rp.FRAMED_IP_ADDRESS, _ipv4(target.framed_ip).packed))
            parts.append(rp.attr(rp.ACCT_SESSION_ID, target.session_id.encode()))
        except ValueError as exc:
            raise _Refused("attribute_too_long") from exc
        parts.append(rp.attr_int(rp.EVENT_TIMESTAMP, int(self._now())))
        parts.append(extra)
        body = b"".join(parts)
        if len(body) > _MAX_ATTRS:
            raise _Refused("packet_too_long")
        return body

    async def _with_identifier(self, job: _Job, gw: _Gateway, secret: bytes, body: bytes) -> Outcome:
        ident = await gw.acquire(self._timeout)
        if ident is None:
            return self._finish(job, CoaOutcome.ERROR) if self._transport is None else self._dropped(job)
        try:
            return await self._exchange(job, gw, ident, secret, body)
        finally:
            gw.release(ident)

    async def _exchange(self, job: _Job, gw: _Gateway, ident: int, secret: bytes, body: bytes) -> Outcome:
        code, ack, nak = _CODES[job.kind]
        datagram, auth = rp.encode_request(code, ident, secret, body)
        pending = _Pending((ack, nak), auth, secret, asyncio.get_running_loop().create_future())
        gw.inflight[ident] = pending
        try:
            attempts = await self._attempts(job.kind, gw.addr, datagram, pending.reply)
        finally:
            del gw.inflight[ident]
        reply = pending.reply.result() if pending.reply.done() else None
        if reply is None:
            outcome = CoaOutcome.TIMEOUT if self._transport is not None else CoaOutcome.ERROR
            return self._finish(job, outcome, attempts=attempts)
        if reply.code == ack:
            return self._finish(job, CoaOutcome.ACK, attempts=attempts)
        return self._finish(job, CoaOutcome.NAK, reply.get_int(rp.ERROR_CAUSE), attempts)

    async def _attempts(
        self, kind: str, addr: Address, datagram: bytes, reply: asyncio.Future[rp.Packet | None]
    ) -> int:
        """Send, and resend on silence; the number of datagrams sent."""
        # A retransmission is the very same datagram: same Identifier, same Event-Timestamp, same
        # authenticators (RFC 5080 §2.2.1, RFC 5176 §2.3). The gateway's duplicate detection then
        # sees one request and answers once; a fresh timestamp would make it a new request.
        wait = self._timeout
        sent = 0
        for attempt in range(self._retries + 1):
            transport = self._transport
            if transport is None:
                break
            if attempt:
                self._retry[kind].inc()
            try:
                transport.sendto(datagram, addr)
            except OSError as exc:  # treated as a lost datagram: the retry may get through
                _log.debug("coa_send_failed", gateway=addr[0], error=str(exc))
            sent += 1
            done, _ = await asyncio.wait((reply,), timeout=wait)
            if done:
                break
            wait = min(wait * self._backoff, self._max_timeout)
        return sent

    def _finish(self, job: _Job, outcome: CoaOutcome, error_cause: int | None = None, attempts: int = 0) -> Outcome:
        self._count[(job.kind, outcome)].inc()
        if attempts:
            self._duration[job.kind].observe(time.monotonic() - job.started)
        if outcome in (CoaOutcome.NAK, CoaOutcome.TIMEOUT):
            _log.info(
                f"coa_{outcome}",
                kind=job.kind,
                gateway=job.target.nas_ip,
                session_id=job.target.session_id,
                error_cause=error_cause,
                attempts=attempts,
            )
        return Outcome(job.kind, outcome, error_cause, attempts)

    def _dropped(self, job: _Job) -> Outcome:
        """Count a request not sent for lack of room; log at most once a second (no log flood)."""
        now = time.monotonic()
        if now - self._drop_logged_at >= 1.0:
            _log.info(
                "coa_dropped_queue_full",
                kind=job.kind,
                gateway=job.target.nas_ip,
                session_id=job.target.session_id,
                suppressed=self._drops_unlogged,
            )
            self._drop_logged_at = now
            self._drops_unlogged = 0
        else:
            self._drops_unlogged += 1
        return self._finish(job, CoaOutcome.DROPPED_QUEUE_FULL)

    # --- replies --------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: Address) -> None:
        gw = self._gateways.get((addr[0], addr[1]))
        if gw is None:
            self._bad_reply(BadReply.UNKNOWN_SOURCE, addr)
            return
        try:
            pkt = rp.decode(data)
        except rp.PacketError:
            self._bad_reply(BadReply.MALFORMED, addr)
            return
        pending = gw.inflight.get(pkt.identifier)
        if pending is None or pending.reply.done():
            self._bad_reply(BadReply.UNMATCHED, addr)  # late, duplicate, or never asked for
            return
        reason = _check_reply(pkt, pending)
        if reason is not None:
            self._bad_reply(reason, addr)
            return
        pending.reply.set_result(pkt)

    def _bad_reply(self, reason: BadReply, addr: Address) -> None:
        self._bad[reason].inc()
        _log.debug("coa_bad_reply", reason=reason, source=addr[0], port=addr[1])


def _check_reply(pkt: rp.Packet, pending: _Pending) -> BadReply | None:
    """Why a reply is not the answer to ``pending``, or None if it is."""
    if pkt.code not in pending.codes:
        return BadReply.UNEXPECTED_CODE
    if not rp.verify_response_authenticator(pkt, pending.request_auth, pending.secret):
        return BadReply.BAD_AUTHENTICATOR
    if rp.verify_message_authenticator(pkt, pending.secret, pending.request_auth) is False:
        return BadReply.BAD_MESSAGE_AUTHENTICATOR
    return None


def _ipv4(address: str) -> ipaddress.IPv4Address:
    """IPv4 only: NAS-IP-Address and Framed-IP-Address are 4 octets (RFC 2865 §5.4, §5.8)."""
    try:
        return ipaddress.IPv4Address(address)
    except ValueError as exc:
        raise _Refused("not_ipv4") from exc
