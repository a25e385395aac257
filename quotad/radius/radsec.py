"""RADIUS over TLS (RadSec, RFC 6614) for gateways that support it.

A TLS listener (port 2083 by default) on which gateways send the same Access-Request and
Accounting-Request packets as over UDP, one after another on the stream, each delimited by its own
Length field (RFC 6614 §2.1). Differences from the UDP edge, each from the RFC:

- The gateway is known by its client certificate, not its source address: the certificate must
  chain to the configured CA (``radsec.ca``; the handshake fails otherwise), and its CN or a DNS
  subjectAltName must be one that ``radsec.clients`` maps to a gateway name; a verified certificate
  that maps to none is closed at once and counted ``unknown_client``.
- The shared secret is the fixed string ``radsec`` (§2.3): authenticators and
  Message-Authenticator are computed as over UDP. quotad still requires Message-Authenticator on
  every Access-Request (R-70), as over UDP.
- "Silently discard" means close the connection (RFC 6613 §2.6, RADIUS over TCP): a Length under
  20 or over 4096 (the framing is lost, RFC 6614 §2.5), a malformed packet (an attribute length of 0
  or 1, attributes past the Length) and a Request Authenticator or Message-Authenticator that does
  not verify each close it, counted ``quotad_radsec_closed_total{reason}`` as well as dropped by
  reason. Requests in progress on it go unanswered; the gateway reconnects and resends them. A
  packet that is well formed and authentic but not served (a wrong code, an Access-Request without
  Message-Authenticator, a Proxy-State flood, a Status-Server while not ready) is dropped and
  counted; the connection goes on.
- Status-Server (RFC 5997), the watchdog of RadSec peers, is answered at once with an Access-Accept
  (one port carries both kinds of request), as on the UDP ports: not while ``ready()`` is false.
- TCP retransmits, so there is no duplicate cache; a request whose answer cannot be stored gets no
  answer (counted ``no_reply``) and the gateway's own timeout takes over, as over UDP.

Bounds: at most ``max_connections`` connections (more are closed at once, counted ``overload``)
and ``per_connection`` requests in progress per connection (beyond that the connection is not
read until one finishes: TCP flow control pushes back on the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import Any

from quotad import log, metrics
from quotad.config import ConfigError, RadsecSettings
from quotad.radius import packet as rp
from quotad.radius.clients import Client
from quotad.radius.codes import Code
from quotad.radius.reasons import Drop
from quotad.radius.server import (
    MA_REQUIRED,
    MAX_PROXY_STATE_OCTETS,
    Drops,
    Handler,
    Ready,
    always_ready,
    proxy_state_octets,
    status_reply,
)

SECRET = b"radsec"  # RFC 6614 §2.3
_KIND = {rp.ACCESS_REQUEST: "access", rp.ACCOUNTING_REQUEST: "accounting"}

# Why quotad closes a connection: the certificate names no gateway, too many connections, or (RFC
# 6613 §2.6) a packet that must be silently discarded: malformed, or not authentic.
CLOSE_REASONS = ("unknown_client", "overload", "malformed", "bad_authenticator")

_log = log.get("quotad.radsec")


class _Close(Exception):
    """The packet was dropped (and counted) and the connection must be closed, by ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def server_context(settings: RadsecSettings) -> ssl.SSLContext:
    """TLS 1.2+ server context that requires a client certificate chaining to ``settings.ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(settings.cert, settings.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([("radsec.cert", f"cannot load {settings.cert!r} with key {settings.key!r}: {exc}")]) \
            from exc
    try:
        context.load_verify_locations(cafile=settings.ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([("radsec.ca", f"cannot load CA certificates {settings.ca!r}: {exc}")]) from exc
    return context


def certificate_names(peercert: dict[str, Any] | None) -> list[str]:
    """The DNS subjectAltNames and the CN(s) of a verified peer certificate, lower-cased."""
    if not peercert:
        return []
    names = [value.lower() for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    for rdn in peercert.get("subject", ()):
        names += [value.lower() for key, value in rdn if key == "commonName"]
    return names


class RadsecServer:
    """The RadSec listener; requests go to the same handlers as the UDP ports'."""

    def __init__(
        self, settings: RadsecSettings, access: Handler, accounting: Handler,
        max_connections: int = 256, per_connection: int = 256, ready: Ready = always_ready,
    ) -> None:
        self.context = server_context(settings)
        self.clients = {subject.lower(): Client(name, SECRET) for name, subject in settings.clients.items()}
        self.handlers = {rp.ACCESS_REQUEST: access, rp.ACCOUNTING_REQUEST: accounting}
        self.max_connections = max_connections
        self.per_connection = per_connection
        self.ready = ready
        self.closing = False
        self.drops = Drops()
        self.closed = {reason: metrics.RADSEC_CLOSED.labels(reason) for reason in CLOSE_REASONS}
        self.status_answered = metrics.RADIUS_REQUESTS.labels("status", "ready")
        self.latency = {code: metrics.RADIUS_LATENCY.labels(kind) for code, kind in _KIND.items()}
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[Any]] = set()
        self.requests: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; return the bound port (a free one for port 0)."""
        self.server = await asyncio.start_server(
            self._connection, host, port, ssl=self.context, ssl_handshake_timeout=10.0, reuse_port=True,
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let requests in progress answer (bounded), close every connection.
        Status-Server goes unanswered from now on: a stopping server is not one to send to."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        if self.requests:
            await asyncio.wait(set(self.requests), timeout=drain_timeout)
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.wait(set(self.connections), timeout=2.0)

    def _client(self, writer: asyncio.StreamWriter) -> Client | None:
        for name in certificate_names(writer.get_extra_info("peercert")):
            client = self.clients.get(name)
            if client is not None:
                return client
        return None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        source = str((writer.get_extra_info("peername") or ("?",))[0])
        client = self._client(writer)
        if client is None or len(self.connections) >= self.max_connections:
            reason = Drop.UNKNOWN_CLIENT if client is None else Drop.OVERLOAD
            self.drops.count(reason, source, detail="radsec connection")
            self.closed[reason].inc()
            writer.close()
            return
        self.connections.add(task)
        slots = asyncio.Semaphore(self.per_connection)
        try:
            await self._read_packets(reader, writer, client, source, slots)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass  # the gateway went away
        finally:
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    async def _read_packets(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: Client, source: str,
        slots: asyncio.Semaphore,
    ) -> None:
        while True:
            header = await reader.readexactly(4)
            length = int.from_bytes(header[2:4], "big")
            if not 20 <= length <= rp.MAX_PACKET:
                self.drops.malformed["length"].inc()
                self.drops.count(Drop.MALFORMED, source, detail="radsec framing lost; connection closed")
                self.closed["malformed"].inc()
                return
            data = header + await reader.readexactly(length - 4)
            try:
                pkt = self._admit(data, client, source)
            except _Close as close:
                self.closed[close.reason].inc()
                return
            if pkt is None:
                continue
            if pkt.code == rp.STATUS_SERVER:
                self._status(pkt, client, writer, source)
                continue
            await slots.acquire()
            request = asyncio.ensure_future(self._serve(pkt, client, writer, source, slots))
            self.requests.add(request)
            request.add_done_callback(self.requests.discard)

    def _admit(self, data: bytes, client: Client, source: str) -> rp.Packet | None:
        """The packet if it passes the UDP edge's checks (minus source address and duplicates);
        None if it is dropped; raises _Close if it is dropped and the connection must close."""
        try:
            pkt = rp.decode(data)
        except rp.PacketError as exc:
            self.drops.malformed[exc.reason].inc()
            self.drops.count(Drop.MALFORMED, source, detail=f"{exc.reason}; radsec connection closed")
            raise _Close("malformed") from None
        if pkt.code not in self.handlers and pkt.code != rp.STATUS_SERVER:
            self.drops.count(Drop.WRONG_CODE, source, detail=Code.name_of(pkt.code))
            return None
        if len(pkt.raw) > 20 + MAX_PROXY_STATE_OCTETS and proxy_state_octets(pkt) > MAX_PROXY_STATE_OCTETS:
            self.drops.count(Drop.PROXY_STATE, source)
            return None
        ma = rp.verify_message_authenticator(pkt, client.secret)
        signed = pkt.code == rp.ACCOUNTING_REQUEST
        if ma is False or (signed and not rp.verify_request_authenticator(pkt, client.secret)):
            self.drops.count(Drop.BAD_AUTHENTICATOR, source, detail="radsec connection closed")
            raise _Close("bad_authenticator")
        if pkt.code in MA_REQUIRED and ma is None:
            self.drops.count(Drop.NO_MESSAGE_AUTHENTICATOR, source)
            return None
        return pkt

    def _status(self, pkt: rp.Packet, client: Client, writer: asyncio.StreamWriter, source: str) -> None:
        """Answer a Status-Server at once with an Access-Accept (no handler), unless not ready."""
        if self.closing or not self.ready():
            self.drops.count(Drop.NOT_READY, source, detail="Status-Server")
            return
        if not writer.is_closing():
            writer.write(status_reply(pkt, client.secret, rp.ACCESS_ACCEPT))
        self.status_answered.inc()

    async def _serve(
        self, pkt: rp.Packet, client: Client, writer: asyncio.StreamWriter, source: str, slots: asyncio.Semaphore,
    ) -> None:
        started = time.monotonic()
        reply: bytes | None = None
        try:
            reply = await self.handlers[pkt.code](pkt, client)
        except Exception:
            _log.exception("handler_failed", kind=_KIND[pkt.code], client=client.name, transport="radsec")
        finally:
            slots.release()
        if reply is None:
            self.drops.count(Drop.NO_REPLY, source)
            return
        if not writer.is_closing():
            writer.write(reply)
        self.latency[pkt.code].observe(time.monotonic() - started)
