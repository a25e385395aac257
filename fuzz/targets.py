"""Fuzz targets shared by the atheris harnesses (fuzz_*.py) and the CI smoke test that replays the
seed corpus through them (tests/reliability/test_fuzz_corpus.py).

Each target takes arbitrary bytes and must return normally; anything raised other than the codec's
PacketError is a bug (R-72: no input crashes the server)."""

from __future__ import annotations

import asyncio
import contextlib

from quotad.aaa import classattr
from quotad.aaa.values import ipv4_text, text
from quotad.radius import packet as rp
from quotad.radius.clients import Client, ClientTable
from quotad.radius.replycache import ReplyCache
from quotad.radius.server import Limits, RadiusProtocol

SECRET = b"testing123"


def packet_target(data: bytes) -> None:
    """The decoder and every accessor a handler uses on what it returns."""
    try:
        pkt = rp.decode(data)
    except rp.PacketError as exc:
        assert exc.reason in ("short", "length", "attribute"), exc.reason
        return
    assert 20 <= len(pkt.raw) <= rp.MAX_PACKET
    assert sum(len(v) + 2 for _, v in pkt.attrs) == len(pkt.raw) - 20
    for type_ in {t for t, _ in pkt.attrs}:
        pkt.get(type_)
        pkt.get_int(type_)
        pkt.get_str(type_)
    for vendor, sub in ((rp.VENDOR_3GPP, rp.TGPP_IMSI), (rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC), (9999, 1)):
        text(pkt.vsa(vendor, sub))
    rp.tgpp_rat_type(pkt)
    ipv4_text(pkt.get(rp.NAS_IP_ADDRESS))
    classattr.decode(pkt.get(rp.CLASS))
    classattr.session_id(pkt.get_str(rp.ACCT_SESSION_ID) or "")
    rp.verify_message_authenticator(pkt, SECRET)
    rp.verify_request_authenticator(pkt, SECRET)
    rp.verify_response_authenticator(pkt, bytes(16), SECRET)
    hidden = pkt.get(rp.USER_PASSWORD)
    if hidden is not None:
        with contextlib.suppress(rp.PacketError):
            rp.decrypt_password(hidden, SECRET, pkt.authenticator)
    chap = pkt.get(rp.CHAP_PASSWORD)
    if chap is not None:
        rp.check_chap(chap, pkt.get(rp.CHAP_CHALLENGE) or pkt.authenticator, b"iij")


class _Transport(asyncio.DatagramTransport):
    """Collects what the edge sends instead of putting it on a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.sent_total = 0

    def sendto(self, data: bytes, addr: object = None) -> None:  # type: ignore[override]
        self.sent.append(bytes(data))
        self.sent_total += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


async def _answer(pkt: rp.Packet, client: Client) -> bytes:
    """A handler that answers every admitted request (what a handler does with it is the
    signed-packet fuzzing's business; here: the edge)."""
    return rp.encode_response(rp.ACCESS_ACCEPT, pkt.identifier, pkt.authenticator, client.secret, b"",
                              pkt.get_all(rp.PROXY_STATE))


class EdgeTarget:
    """RadiusProtocol.datagram_received, the UDP edge, on one event loop kept across inputs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # the edge schedules its handler tasks on it
        clients = ClientTable([("127.0.0.1/32", Client("lo", SECRET))])
        self.protocol = RadiusProtocol(rp.ACCESS_REQUEST, _answer, clients, ReplyCache(10.0), Limits())
        self.transport = _Transport()
        self.loop.run_until_complete(self._connect())

    async def _connect(self) -> None:
        """As asyncio does before the first datagram (the edge keeps the running loop then)."""
        self.protocol.connection_made(self.transport)

    def __call__(self, data: bytes) -> None:
        self.loop.run_until_complete(self._feed(data))
        for reply in self.transport.sent:
            rp.decode(reply)  # what it sends is a packet
        self.transport.sent.clear()

    async def _feed(self, data: bytes) -> None:
        """One datagram, delivered from inside the running loop as the transport delivers it."""
        self.protocol.datagram_received(data, ("127.0.0.1", 40000))  # must not raise
        await self._drain()

    async def _drain(self) -> None:
        if self.protocol.tasks:
            await asyncio.wait(set(self.protocol.tasks))
