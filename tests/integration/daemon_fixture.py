"""A real quotad daemon in the test's event loop: real Redis, real UDP sockets on free ports."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from quotad import config as cfg
from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from tests.conftest import free_port

SECRET = b"testing123"
# 2026-11-10 12:00 Japan time
T0 = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp()


def daemon_config(redis_url: str, coa_port: int = 3799, **server: object) -> cfg.Config:
    base = cfg.Config()
    return replace(
        base,
        clients=tuple(replace(c, coa_port=coa_port) for c in base.clients),
        server=replace(base.server, auth_port=0, acct_port=0, http_port=0, **server),  # type: ignore[arg-type]
        redis=replace(base.redis, url=redis_url),
    )


@asynccontextmanager
async def running_daemon(config: cfg.Config, now: float | None = T0) -> AsyncIterator[Daemon]:
    """The daemon on a clock standing at ``now``, or on the real clock (``now=None``)."""
    daemon = Daemon(config, clock=SettableClock(now)) if now is not None else Daemon(config)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def exchange(
    port: int, datagram: bytes, timeout: float = 1.0, source: str = "127.0.0.1"
) -> bytes | None:
    """Send one datagram from a fresh socket and wait for one reply (None on timeout)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    try:
        await loop.sock_sendto(sock, datagram, ("127.0.0.1", port))
        return await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
    except TimeoutError:
        return None
    finally:
        sock.close()


def access_request(
    msisdn: str = "819000000001",
    password: bytes = b"iij",
    apn: bytes = b"iijmio.jp",
    identifier: int = 1,
    chap: str | None = None,
    extra: bytes = b"",
    message_authenticator: bool = True,
    imsi: str | None = None,
    user: bytes = b"mio@iij",
) -> tuple[bytes, bytes]:
    """An Access-Request built with our codec: PAP by default; chap="challenge" or "authenticator".

    The Request Authenticator is random, as a gateway's is (RFC 2865 §3): quotad takes a request
    from the same address, port and Identifier with the same authenticator for a retransmission
    (RFC 5080 §2.2.2) and answers it from its reply cache. With a fixed one, two requests from
    fresh sockets that the kernel gave the same ephemeral port got the first one's Accept: a full
    run once saw a line's session recorded under another line, and that line's CoA never sent."""
    authenticator = os.urandom(16)
    attrs = rp.attr(rp.USER_NAME, user)
    if chap is None:
        attrs += rp.pap_attr(password, SECRET, authenticator)
    else:
        challenge = bytes(range(100, 116)) if chap == "challenge" else authenticator
        import hashlib

        digest = hashlib.md5(b"\x07" + password + challenge).digest()
        attrs += rp.attr(rp.CHAP_PASSWORD, b"\x07" + digest)
        if chap == "challenge":
            attrs += rp.attr(rp.CHAP_CHALLENGE, challenge)
    attrs += rp.attr(rp.CALLED_STATION_ID, apn) + rp.attr(rp.CALLING_STATION_ID, msisdn.encode())
    attrs += rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1]))
    if imsi:
        attrs += rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI, imsi.encode())
    attrs += extra
    return rp.encode_request(
        rp.ACCESS_REQUEST, identifier, SECRET, attrs, authenticator=authenticator,
        message_authenticator=message_authenticator,
    )


def accounting_request(
    session_id: str, status: int, octets_in: int = 0, octets_out: int = 0, identifier: int = 1,
    msisdn: str = "819000000001", klass: bytes | None = None, gigawords_in: int = 0,
) -> tuple[bytes, bytes]:
    attrs = (
        rp.attr_int(rp.ACCT_STATUS_TYPE, status)
        + rp.attr(rp.ACCT_SESSION_ID, session_id.encode())
        + rp.attr(rp.CALLING_STATION_ID, msisdn.encode())
        + rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1]))
        + rp.attr_int(rp.ACCT_INPUT_OCTETS, octets_in)
        + rp.attr_int(rp.ACCT_OUTPUT_OCTETS, octets_out)
    )
    if gigawords_in:
        attrs += rp.attr_int(rp.ACCT_INPUT_GIGAWORDS, gigawords_in)
    if klass is not None:
        attrs += rp.attr(rp.CLASS, klass)
    return rp.encode_request(rp.ACCOUNTING_REQUEST, identifier, SECRET, attrs, message_authenticator=False)


# --- the CoA scenario: one minimum_start line with one coupon, and a gateway on a free port -----

LINE = LineRef("mini", "819000000021")


class Gateway(asyncio.DatagramProtocol):
    """Answers every CoA/Disconnect with an ACK (or, with ``nak_cause`` set, a NAK carrying that
    Error-Cause; with ``known_sessions`` set, a NAK with 503 for a request naming a session not in
    it, as a gateway does before it has set up the session) and keeps what it received."""

    def __init__(self) -> None:
        self.received: list[rp.Packet] = []
        self.arrived = asyncio.Event()
        self.nak_cause: int | None = None
        self.known_sessions: set[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = rp.decode(data)
        assert rp.verify_request_authenticator(pkt, SECRET)
        assert rp.verify_message_authenticator(pkt, SECRET) is True
        self.received.append(pkt)
        cause = self.nak_cause
        if self.known_sessions is not None and pkt.get(rp.ACCT_SESSION_ID) not in self.known_sessions:
            cause = 503
        if cause is None:
            code, attrs = (rp.COA_ACK if pkt.code == rp.COA_REQUEST else rp.DISCONNECT_ACK), b""
        else:
            code = rp.COA_NAK if pkt.code == rp.COA_REQUEST else rp.DISCONNECT_NAK
            attrs = rp.attr_int(rp.ERROR_CAUSE, cause)
        reply = rp.encode_response(code, pkt.identifier, pkt.authenticator, SECRET, attrs)
        self.transport.sendto(reply, addr)  # type: ignore[attr-defined]
        self.arrived.set()

    async def next(self, timeout: float = 3.0) -> rp.Packet:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        self.arrived.clear()
        return self.received[-1]


@asynccontextmanager
async def mini_with_gateway(redis_url: str) -> AsyncIterator[tuple[Daemon, Gateway]]:
    """A daemon whose CoA/Disconnect requests go to a Gateway on a free port; LINE provisioned
    (minimum_start, no bundle) with one 100 MB coupon."""
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", port))
    try:
        async with running_daemon(daemon_config(redis_url, coa_port=port)) as d:
            assert d.store is not None
            await d.store.provisioning.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), T0)
            await d.store.provisioning.add_line("mini", LINE.msisdn, "8981100000000000219", "440100000000021", "nano",
                                                False, T0)
            await d.store.provisioning.charge("mini", 1, "test", T0)
            yield d, gateway
    finally:
        transport.close()
