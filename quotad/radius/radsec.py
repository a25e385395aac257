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
- A Length under 20 or over 4096 loses the framing: the connection is closed (§2.5), counted
  ``malformed``. Any other bad packet is dropped and counted by reason; the connection goes on.
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
from quotad.radius.server import MAX_PROXY_STATE_OCTETS, Drops, Handler, proxy_state_octets

SECRET = b"radsec"  # RFC 6614 §2.3
_KIND = {rp.ACCESS_REQUEST: "access", rp.ACCOUNTING_REQUEST: "accounting"}

_log = log.get("quotad.radsec")


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
        max_connections: int = 256, per_connection: int = 256,
    ) -> None:
        self.context = server_context(settings)
        self.clients = {subject.lower(): Client(name, SECRET) for name, subject in settings.clients.items()}
        self.handlers = {rp.ACCESS_REQUEST: access, rp.ACCOUNTING_REQUEST: accounting}
        self.max_connections = max_connections
        self.per_connection = per_connection
        self.drops = Drops()
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
        """Stop accepting, let requests in progress answer (bounded), close every connection."""
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
            reason = "unknown_client" if client is None else "overload"
            self.drops.count(reason, source, detail="radsec connection")
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
                self.drops.count("malformed", source, detail="radsec framing lost")
                return
            data = header + await reader.readexactly(length - 4)
            pkt = self._admit(data, client, source)
            if pkt is None:
                continue
            await slots.acquire()
            request = asyncio.ensure_future(self._serve(pkt, client, writer, source, slots))
            self.requests.add(request)
            request.add_done_callback(self.requests.discard)

    def _admit(self, data: bytes, client: Client, source: str) -> rp.Packet | None:
        """The packet if it passes the UDP edge's checks (minus source address and duplicates)."""
        try:
            pkt = rp.decode(data)
        except rp.PacketError as exc:
            self.drops.malformed[exc.reason].inc()
            self.drops.count("malformed", source, detail=exc.reason)
            return None
        if pkt.code not in self.handlers:
            self.drops.count("wrong_code", source, detail=str(pkt.code))
            return None
        if len(pkt.raw) > 20 + MAX_PROXY_STATE_OCTETS and proxy_state_octets(pkt) > MAX_PROXY_STATE_OCTETS:
            self.drops.count("proxy_state", source)
            return None
        ma = rp.verify_message_authenticator(pkt, client.secret)
        if pkt.code == rp.ACCESS_REQUEST and ma is None:
            self.drops.count("no_message_authenticator", source)
            return None
        if ma is False or (pkt.code != rp.ACCESS_REQUEST and not rp.verify_request_authenticator(pkt, client.secret)):
            self.drops.count("bad_authenticator", source)
            return None
        return pkt

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
            self.drops.count("no_reply", source)
            return
        if not writer.is_closing():
            writer.write(reply)
        self.latency[pkt.code].observe(time.monotonic() - started)
