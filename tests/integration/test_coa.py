"""The RFC 5176 Dynamic Authorization client over real UDP (R-21, R-24, R-30, R-70).

The gateways are simulated here on 127.0.0.1 / 127.0.0.2; pyrad is the independent peer: it
parses our requests and builds the replies. Authenticators are also recomputed by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pyrad import packet as pp
from pyrad.dictionary import Dictionary as PyradDictionary
from structlog.testing import capture_logs

from quotad import metrics
from quotad.radius import packet as rp
from quotad.radius.coa import DynamicAuthClient, Outcome, SessionTarget
from quotad.radius.dictionary import default_dictionary_path

SECRET = b"coa-secret-1"
SECRET2 = b"coa-secret-2"
NOW = 1_790_000_000
PROFILE = rp.attr(rp.FILTER_ID, b"low") + rp.attr_vsa(rp.VENDOR_QUOTAD, 4, (200_000).to_bytes(4, "big"))
DICT = PyradDictionary(str(default_dictionary_path()))


def target(host: str = "127.0.0.1", session: str = "sess-0001") -> SessionTarget:
    return SessionTarget(session, host, "100.64.0.7", "440100000000001", "819000000001")


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def count(kind: str, outcome: str) -> float:
    return sample("quotad_coa_requests_total", kind=kind, outcome=outcome)


class Gateway(asyncio.DatagramProtocol):
    """A NAS's CoA port. Modes: ack, nak, silent, hold (answer on release()), or a bad reply
    ("wrong_secret", "bad_ma", "wrong_code") sent before a valid ACK, or instead of it with
    ``then_ack=False``."""

    def __init__(self, host: str, secret: bytes, mode: str, error_cause: int | None, then_ack: bool):
        self.host, self.secret, self.mode = host, secret, mode
        self.error_cause, self.then_ack = error_cause, then_ack
        self.port = 0
        self.received: list[bytes] = []
        self.held: list[tuple[pp.CoAPacket, Any]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]
        # 256 requests arrive in one burst in the Identifier tests.
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        req = pp.CoAPacket(packet=data, secret=self.secret, dict=DICT)
        if self.mode == "silent":
            return
        if self.mode == "hold":
            self.held.append((req, addr))
            return
        if self.mode in ("wrong_secret", "bad_ma", "wrong_code"):
            self._send(bad_reply(req, self.mode), addr)
            if not self.then_ack:
                return
        self._send(reply(req, nak=self.mode == "nak", error_cause=self.error_cause), addr)

    def release(self) -> None:
        """Answer every held request with an ACK, and ACK at once from now on."""
        self.mode = "ack"
        for req, addr in self.held:
            self._send(reply(req), addr)
        self.held.clear()

    def _send(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


def reply(req: pp.CoAPacket, nak: bool = False, error_cause: int | None = None) -> bytes:
    """pyrad's ACK or NAK, Message-Authenticator included."""
    rep = req.CreateReply()
    if nak:
        rep.code = pp.DisconnectNAK if req.code == pp.DisconnectRequest else pp.CoANAK
    if error_cause is not None:
        rep["Error-Cause"] = error_cause
    rep.add_message_authenticator()
    return bytes(rep.ReplyPacket())


def bad_reply(req: pp.CoAPacket, how: str) -> bytes:
    if how == "wrong_secret":
        forged = pp.CoAPacket(packet=req.raw_packet, secret=b"not-the-secret", dict=DICT)
        return reply(forged)
    if how == "wrong_code":
        rep = req.CreateReply()
        rep.code = pp.DisconnectACK if req.code == pp.CoARequest else pp.CoAACK
        rep.add_message_authenticator()
        return bytes(rep.ReplyPacket())
    # bad_ma: a Message-Authenticator off by one bit, with a Response Authenticator recomputed so
    # that only the Message-Authenticator is wrong.
    raw = bytearray(reply(req))
    assert raw[20] == rp.MESSAGE_AUTHENTICATOR
    raw[22] ^= 1
    raw[4:20] = hashlib.md5(bytes(raw[:4]) + req.authenticator + bytes(raw[20:]) + req.secret).digest()
    return bytes(raw)


GatewayFactory = Callable[..., Awaitable[Gateway]]
ClientFactory = Callable[..., Awaitable[DynamicAuthClient]]


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayFactory]:
    transports: list[asyncio.BaseTransport] = []

    async def make(
        host: str = "127.0.0.1",
        mode: str = "ack",
        secret: bytes = SECRET,
        error_cause: int | None = None,
        then_ack: bool = True,
    ) -> Gateway:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: Gateway(host, secret, mode, error_cause, then_ack), local_addr=(host, 0)
        )
        transports.append(transport)
        return proto

    yield make
    for t in transports:
        t.close()


@pytest.fixture
async def client() -> AsyncIterator[ClientFactory]:
    clients: list[DynamicAuthClient] = []

    async def make(*gateways: Gateway, **kwargs: Any) -> DynamicAuthClient:
        table = {gw.host: (gw.secret, gw.port) for gw in gateways}
        kwargs.setdefault("timeout", 0.05)
        c = DynamicAuthClient(table.get, bind_host="127.0.0.1", now=lambda: NOW + 0.9, **kwargs)
        await c.start()
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Yield to the loop until ``condition`` holds (a safety limit, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


def check_signed_request(raw: bytes, secret: bytes) -> None:
    """Request Authenticator and Message-Authenticator, recomputed by hand (RFC 5176 §3.3,
    RFC 3579 §3.2) and by pyrad."""
    assert raw[4:20] == hashlib.md5(raw[:4] + bytes(16) + raw[20:] + secret).digest()
    assert raw[20:22] == bytes((rp.MESSAGE_AUTHENTICATOR, 18)), "Message-Authenticator first"
    ma = hmac.new(secret, raw[:4] + bytes(16) + raw[20:22] + bytes(16) + raw[38:], "md5").digest()
    assert raw[22:38] == ma
    theirs = pp.CoAPacket(packet=raw, secret=secret, dict=DICT)
    assert theirs.VerifyCoARequest() is True
    assert theirs.verify_message_authenticator() is True


def check_identification(req: pp.CoAPacket) -> None:
    """The identification attributes of RFC 5176 §3 and Event-Timestamp (§3.5)."""
    assert req["Acct-Session-Id"] == ["sess-0001"]
    assert req["User-Name"] == ["440100000000001"]
    assert req["Calling-Station-Id"] == ["819000000001"]
    assert req["Framed-IP-Address"] == ["100.64.0.7"]
    assert req["NAS-IP-Address"] == ["127.0.0.1"]
    assert req["Event-Timestamp"] == [NOW]


async def test_r24_coa_ack_carries_identification_and_profile(gateway: GatewayFactory, client: ClientFactory) -> None:
    """R-24 / R-70: one signed CoA-Request with the session's identification and the profile."""
    gw = await gateway()
    c = await client(gw)
    before = (count("coa", "ack"), sample("quotad_coa_duration_seconds_count", kind="coa"))
    retries = sample("quotad_coa_retries_total", kind="coa")
    depth = sample("quotad_coa_queue_depth")

    assert await c.coa(target(), PROFILE) == Outcome("coa", "ack", None, 1)

    assert len(gw.received) == 1
    raw = gw.received[0]
    assert raw[0] == rp.COA_REQUEST
    check_signed_request(raw, SECRET)
    req = pp.CoAPacket(packet=raw, secret=SECRET, dict=DICT)
    check_identification(req)
    assert req["Filter-Id"] == ["low"]
    assert req["Quotad-Rate-Down"] == [200_000]
    assert raw.endswith(PROFILE), "profile attributes carried as given"
    assert count("coa", "ack") == before[0] + 1
    assert sample("quotad_coa_duration_seconds_count", kind="coa") == before[1] + 1
    assert sample("quotad_coa_retries_total", kind="coa") == retries
    assert sample("quotad_coa_queue_depth") == depth


async def test_r24_coa_nak_503_not_retried(gateway: GatewayFactory, client: ClientFactory) -> None:
    """R-24: a NAK is an answer: its Error-Cause is returned and nothing is resent."""
    gw = await gateway(mode="nak", error_cause=503)
    c = await client(gw, retries=3)
    naks, retries = count("coa", "nak"), sample("quotad_coa_retries_total", kind="coa")

    with capture_logs() as logs:
        outcome = await c.coa(target(), PROFILE)

    assert outcome == Outcome("coa", "nak", 503, 1)
    await asyncio.sleep(0.15)  # longer than the first retry would have waited
    assert len(gw.received) == 1
    assert count("coa", "nak") == naks + 1
    assert sample("quotad_coa_retries_total", kind="coa") == retries
    lines = [entry for entry in logs if entry["event"] == "coa_nak"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["kind"], line["gateway"], line["session_id"], line["error_cause"]) == (
        "coa",
        "127.0.0.1",
        "sess-0001",
        503,
    )
    assert SECRET.decode() not in repr(logs)


async def test_r70_silent_gateway_retried_then_timeout(gateway: GatewayFactory, client: ClientFactory) -> None:
    """R-70: 1 + retries identical datagrams (same Identifier, same bytes), then "timeout"."""
    gw = await gateway(mode="silent")
    c = await client(gw, timeout=0.01, retries=3, max_timeout=0.04)
    timeouts, retries = count("coa", "timeout"), sample("quotad_coa_retries_total", kind="coa")

    with capture_logs() as logs:
        outcome = await c.coa(target(), PROFILE)

    assert outcome == Outcome("coa", "timeout", None, 4)
    assert len(gw.received) == 4
    assert len(set(gw.received)) == 1, "a retransmission is the same datagram"
    assert count("coa", "timeout") == timeouts + 1
    assert sample("quotad_coa_retries_total", kind="coa") == retries + 3
    assert [e["event"] for e in logs if e["event"].startswith("coa_")] == ["coa_timeout"]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("wrong_secret", "bad_authenticator"),
        ("bad_ma", "bad_message_authenticator"),
        ("wrong_code", "unexpected_code"),
    ],
)
async def test_r70_unverifiable_reply_ignored_valid_one_wins(
    gateway: GatewayFactory, client: ClientFactory, how: str, reason: str
) -> None:
    """R-70: a reply that fails verification is ignored; the valid one that follows is the answer."""
    gw = await gateway(mode=how)
    c = await client(gw, timeout=0.5)
    bad = sample("quotad_coa_bad_replies_total", reason=reason)
    acks = count("coa", "ack")

    assert await c.coa(target(), PROFILE) == Outcome("coa", "ack", None, 1)
    assert sample("quotad_coa_bad_replies_total", reason=reason) == bad + 1
    assert count("coa", "ack") == acks + 1


async def test_r70_only_unverifiable_replies_is_timeout(gateway: GatewayFactory, client: ClientFactory) -> None:
    """R-70: replies signed with the wrong secret never count as an answer."""
    gw = await gateway(mode="wrong_secret", then_ack=False)
    c = await client(gw, timeout=0.01, retries=2, max_timeout=0.02)
    bad = sample("quotad_coa_bad_replies_total", reason="bad_authenticator")
    errors = count("coa", "error")

    assert await c.coa(target(), PROFILE) == Outcome("coa", "timeout", None, 3)
    assert len(gw.received) == 3
    await until(lambda: sample("quotad_coa_bad_replies_total", reason="bad_authenticator") >= bad + 2)
    assert count("coa", "error") == errors, "a bad reply is not a request outcome"


async def test_r70_bounded_queue_silent_gateway_does_not_slow_others(
    gateway: GatewayFactory, client: ClientFactory
) -> None:
    """R-70: 5 outstanding for a silent gateway, 15 dropped at once; another gateway is served."""
    silent = await gateway(mode="silent")
    answering = await gateway(host="127.0.0.2", secret=SECRET2)
    c = await client(silent, answering, max_pending=5, timeout=0.3, retries=1)
    dropped, timeouts = count("coa", "dropped_queue_full"), count("coa", "timeout")
    depth = sample("quotad_coa_queue_depth")

    tasks = [asyncio.create_task(c.coa(target(session=f"s{i}"), PROFILE)) for i in range(20)]
    await until(lambda: sum(t.done() for t in tasks) == 15 and len(silent.received) == 5)
    assert {t.result() for t in tasks if t.done()} == {Outcome("coa", "dropped_queue_full", None, 0)}
    assert count("coa", "dropped_queue_full") == dropped + 15
    assert sample("quotad_coa_queue_depth") == depth + 5

    assert await c.coa(target("127.0.0.2"), PROFILE) == Outcome("coa", "ack", None, 1)
    waiting = [t for t in tasks if not t.done()]
    assert len(waiting) == 5, "the silent gateway's requests are still waiting"

    results = await asyncio.gather(*waiting)
    assert results == [Outcome("coa", "timeout", None, 2)] * 5
    assert len(silent.received) == 10
    assert count("coa", "timeout") == timeouts + 5
    assert sample("quotad_coa_queue_depth") == depth


async def test_r70_identifiers_unique_per_gateway_and_reused_when_freed(
    gateway: GatewayFactory, client: ClientFactory
) -> None:
    """R-70: 256 requests in flight use 256 distinct Identifiers; the 257th waits for a free one."""
    gw = await gateway(mode="hold")
    c = await client(gw, timeout=5.0, retries=0, max_pending=1000)

    tasks = [asyncio.create_task(c.coa(target(session=f"s{i}"), PROFILE)) for i in range(257)]
    await until(lambda: len(gw.held) == 256)
    assert sorted(raw[1] for raw in gw.received) == list(range(256))
    assert not any(t.done() for t in tasks)

    gw.release()
    results = await asyncio.gather(*tasks)
    assert results == [Outcome("coa", "ack", None, 1)] * 257
    assert len(gw.received) == 257


async def test_r70_identifiers_exhausted_is_dropped_after_timeout(
    gateway: GatewayFactory, client: ClientFactory
) -> None:
    """R-70: with all 256 Identifiers of a gateway in use, a request waits at most ``timeout``."""
    gw = await gateway(mode="silent")
    c = await client(gw, timeout=0.05, retries=1, max_pending=1000)
    dropped = count("coa", "dropped_queue_full")

    results = await c.send_all([target(session=f"s{i}") for i in range(257)], PROFILE)

    assert results[:256] == [Outcome("coa", "timeout", None, 2)] * 256
    assert results[256] == Outcome("coa", "dropped_queue_full", None, 0)
    assert count("coa", "dropped_queue_full") == dropped + 1
    assert len(gw.received) == 512


@pytest.mark.parametrize(("mode", "expected"), [("ack", ("ack", None)), ("nak", ("nak", 503))])
async def test_r30_disconnect(
    gateway: GatewayFactory, client: ClientFactory, mode: str, expected: tuple[str, int | None]
) -> None:
    """R-30: a signed Disconnect-Request with the session's identification; ACK or NAK."""
    gw = await gateway(mode=mode, error_cause=503 if mode == "nak" else None)
    c = await client(gw)
    before = count("disconnect", expected[0])

    assert await c.disconnect(target()) == Outcome("disconnect", expected[0], expected[1], 1)

    assert len(gw.received) == 1
    raw = gw.received[0]
    assert raw[0] == rp.DISCONNECT_REQUEST
    check_signed_request(raw, SECRET)
    req = pp.CoAPacket(packet=raw, secret=SECRET, dict=DICT)
    check_identification(req)
    assert "Filter-Id" not in req
    assert count("disconnect", expected[0]) == before + 1


async def test_r70_unknown_gateway_is_error_nothing_sent(gateway: GatewayFactory, client: ClientFactory) -> None:
    """R-70: one shared secret per gateway; no secret, no request."""
    gw = await gateway()
    c = await client(gw)
    errors = count("coa", "error")

    assert await c.coa(target("127.0.0.9"), PROFILE) == Outcome("coa", "error", None, 0)
    assert gw.received == []
    assert count("coa", "error") == errors + 1


async def test_r24_send_all_concurrent_outcomes_in_order(gateway: GatewayFactory, client: ClientFactory) -> None:
    """R-24: several sessions changed at once; each outcome belongs to its target."""
    acking = await gateway()
    naking = await gateway(host="127.0.0.2", secret=SECRET2, mode="nak", error_cause=503)
    c = await client(acking, naking)

    results = await c.send_all([target("127.0.0.2"), target(), target("127.0.0.2", "s2")], PROFILE)

    assert results == [
        Outcome("coa", "nak", 503, 1),
        Outcome("coa", "ack", None, 1),
        Outcome("coa", "nak", 503, 1),
    ]
    check_signed_request(naking.received[0], SECRET2)


async def test_r70_close_ends_outstanding_requests(gateway: GatewayFactory, client: ClientFactory) -> None:
    """Closing the client ends a request still waiting with "error", at once."""
    gw = await gateway(mode="silent")
    c = await client(gw, timeout=5.0)
    depth = sample("quotad_coa_queue_depth")

    task = asyncio.create_task(c.coa(target(), PROFILE))
    await until(lambda: len(gw.received) == 1)
    await c.close()

    assert await task == Outcome("coa", "error", None, 1)
    assert sample("quotad_coa_queue_depth") == depth
