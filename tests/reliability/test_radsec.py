"""RadSec (RADIUS over TLS, RFC 6614) end to end: certificates made by the openssl command line,
a real daemon with the `[radsec]` listener, a real Redis (R-70, R-72)."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pyrad import packet as pp

from quotad import config as cfg
from quotad import metrics
from quotad.app import Daemon
from quotad.radius import packet as rp
from quotad.radius.radsec import CLOSE_REASONS
from tests.integration.daemon_fixture import T0, daemon_config, running_daemon
from tests.integration.pyrad_gateway import status_server, verify_status_reply
from tests.integration.test_radius_e2e import provision
from tests.reliability.certs import Pair, make_ca, make_leaf

RADSEC = b"radsec"  # RFC 6614 §2.3: the shared secret over TLS


def metric(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class Pki:
    def __init__(self, root: Path) -> None:
        self.ca = make_ca(root, "gateways-ca")
        self.server = make_leaf(root, self.ca, "quotad.example", server=True)
        self.gateway = make_leaf(root, self.ca, "pgw1.example")
        self.by_dns = make_leaf(root, self.ca, "some-cn", dns="pgw2.example")
        self.unknown = make_leaf(root, self.ca, "rogue.example")
        self.other_ca = make_ca(root, "other-ca")
        self.foreign = make_leaf(root, self.other_ca, "pgw1.example")  # right name, wrong CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    yield Pki(tmp_path_factory.mktemp("pki"))


def radsec_config(redis_url: str, pki: Pki) -> cfg.Config:
    base = daemon_config(redis_url)
    settings = cfg.RadsecSettings(
        enabled=True, port=0, cert=str(pki.server.cert), key=str(pki.server.key), ca=str(pki.ca.cert),
        clients={"pgw1": "pgw1.example", "pgw2": "pgw2.example"},
    )
    return replace(base, radsec=settings)


@pytest.fixture
async def daemon(redis_url: str, pki: Pki) -> AsyncIterator[Daemon]:
    async with running_daemon(radsec_config(redis_url, pki)) as d:
        await provision(d.store)
        yield d


def client_context(pki: Pki, pair: Pair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca.cert))
    if pair is not None:
        context.load_cert_chain(str(pair.cert), str(pair.key))
    return context


async def connect(daemon: Daemon, pki: Pki, pair: Pair | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", daemon.radsec_port, ssl=client_context(pki, pair), server_hostname="localhost"
    )


async def read_packet(reader: asyncio.StreamReader, timeout: float = 2.0) -> bytes:
    header = await asyncio.wait_for(reader.readexactly(4), timeout)
    length = int.from_bytes(header[2:4], "big")
    return header + await asyncio.wait_for(reader.readexactly(length - 4), timeout)


def pap_request(identifier: int, msisdn: str = "819000000001", secret: bytes = RADSEC,
                message_authenticator: bool = True) -> tuple[bytes, bytes]:
    authenticator = os.urandom(16)
    attrs = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.pap_attr(b"iij", secret, authenticator)
             + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp") + rp.attr(rp.CALLING_STATION_ID, msisdn.encode())
             + rp.attr(rp.ACCT_SESSION_ID, f"rs-{identifier}".encode()))
    return rp.encode_request(rp.ACCESS_REQUEST, identifier, secret, attrs, authenticator=authenticator,
                             message_authenticator=message_authenticator)


def verified(raw: bytes, request_auth: bytes) -> rp.Packet:
    pkt = rp.decode(raw)
    assert rp.verify_response_authenticator(pkt, request_auth, RADSEC)
    if pkt.code != rp.ACCOUNTING_RESPONSE:
        assert pkt.attrs[0][0] == rp.MESSAGE_AUTHENTICATOR, "R-70: Message-Authenticator first"
        assert rp.verify_message_authenticator(pkt, RADSEC, request_auth) is True
    return pkt


async def closed_without_reply(reader: asyncio.StreamReader) -> bool:
    """The server closed the stream (EOF or a TLS alert) without sending a packet."""
    try:
        data = await asyncio.wait_for(reader.read(4096), 3.0)
    except (ssl.SSLError, ConnectionError):
        return True
    return data == b""


async def test_r70_radsec_gateway_certificate_answered_with_radsec_secret(daemon: Daemon, pki: Pki) -> None:
    """A gateway certificate from the configured CA: Access-Accept and Accounting-Response over TLS,
    signed with the secret "radsec"; three requests in a row on one stream, each answered."""
    reader, writer = await connect(daemon, pki, pki.gateway)
    try:
        sent = {ident: pap_request(ident, msisdn) for ident, msisdn in
                ((1, "819000000001"), (2, "819000000002"), (3, "819000000001"))}
        writer.write(b"".join(datagram for datagram, _ in sent.values()))
        replies = [rp.decode(await read_packet(reader)) for _ in sent]
        assert sorted(p.identifier for p in replies) == [1, 2, 3]
        for pkt in replies:
            accept = verified(pkt.raw, sent[pkt.identifier][1])
            assert accept.code == rp.ACCESS_ACCEPT
            assert accept.get(rp.CLASS) is not None
        klass = next(p for p in replies if p.identifier == 1).get(rp.CLASS)
        assert klass is not None
        attrs = (rp.attr_int(rp.ACCT_STATUS_TYPE, 1) + rp.attr(rp.ACCT_SESSION_ID, b"rs-1")
                 + rp.attr(rp.CALLING_STATION_ID, b"819000000001") + rp.attr(rp.CLASS, klass))
        acct, acct_auth = rp.encode_request(rp.ACCOUNTING_REQUEST, 9, RADSEC, attrs, message_authenticator=False)
        writer.write(acct)
        response = verified(await read_packet(reader), acct_auth)
        assert (response.code, response.identifier) == (rp.ACCOUNTING_RESPONSE, 9)
    finally:
        writer.close()
    view = await daemon.store.views.contract_view("fam", T0)
    assert view.pool == 1_000_000_000 - 2 * 10_000_000  # two lines, one slice each


async def test_r70_radsec_gateway_known_by_dns_subject_alt_name(daemon: Daemon, pki: Pki) -> None:
    reader, writer = await connect(daemon, pki, pki.by_dns)
    try:
        datagram, auth = pap_request(5)
        writer.write(datagram)
        assert verified(await read_packet(reader), auth).code == rp.ACCESS_ACCEPT
    finally:
        writer.close()


async def test_r70_radsec_unknown_certificate_name_is_closed_and_counted(daemon: Daemon, pki: Pki) -> None:
    """A certificate from the right CA whose name maps to no gateway: closed at once, no answer."""
    before = metric("quotad_radius_dropped_total", reason="unknown_client")
    closed = metric("quotad_radsec_closed_total", reason="unknown_client")
    reader, writer = await connect(daemon, pki, pki.unknown)
    try:
        datagram, _ = pap_request(6)
        writer.write(datagram)
        assert await closed_without_reply(reader)
    finally:
        writer.close()
    assert metric("quotad_radius_dropped_total", reason="unknown_client") == before + 1
    assert metric("quotad_radsec_closed_total", reason="unknown_client") == closed + 1


@pytest.mark.parametrize("who", ["other CA", "no certificate"])
async def test_r70_radsec_certificate_from_another_ca_fails_the_handshake(daemon: Daemon, pki: Pki, who: str) -> None:
    """The TLS handshake itself refuses a client certificate that does not chain to radsec.ca (or
    none at all). With TLS 1.2 the client's handshake completes only after the server accepted its
    certificate, so the failure shows in the handshake (the gateway certificate, as a control,
    completes it); with TLS 1.3 the stream ends before any packet. Neither reaches the gateway-name
    check (unknown_client unchanged)."""
    pair = pki.foreign if who == "other CA" else None
    before = metric("quotad_radius_dropped_total", reason="unknown_client")

    def tls12(pair: Pair | None) -> ssl.SSLContext:
        context = client_context(pki, pair)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    _, writer = await asyncio.open_connection(
        "127.0.0.1", daemon.radsec_port, ssl=tls12(pki.gateway), server_hostname="localhost")
    writer.close()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await asyncio.open_connection("127.0.0.1", daemon.radsec_port, ssl=tls12(pair), server_hostname="localhost")
    reader, writer = await connect(daemon, pki, pair)
    try:
        writer.write(pap_request(7)[0])
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await read_packet(reader)
    finally:
        writer.close()
    assert metric("quotad_radius_dropped_total", reason="unknown_client") == before


async def test_radsec_status_server_is_the_watchdog_answered_with_access_accept(daemon: Daemon, pki: Pki) -> None:
    """RFC 5997 over RadSec (its peers' watchdog): one port carries both kinds of request, so a
    Status-Server, whether pyrad built it for an authentication or an accounting server, is answered
    with an Access-Accept signed with "radsec" and a Message-Authenticator. Not a request for the
    handlers (their counters do not move), and the stream goes on: the Access-Request sent with it
    is answered."""
    answered = metric("quotad_radius_requests_total", kind="status", outcome="ready")
    accepts = metric("quotad_radius_requests_total", kind="access", outcome="accept")
    closed = closes()
    reader, writer = await connect(daemon, pki, pki.gateway)
    try:
        probes = {ident: status_server(kind, secret=RADSEC, identifier=ident, proxy_states=(b"ps",))
                  for ident, kind in ((61, "auth"), (62, "acct"))}
        good, auth = pap_request(63)
        writer.write(b"".join(datagram for _, datagram in probes.values()) + good)
        replies = {pkt.identifier: pkt for pkt in [rp.decode(await read_packet(reader)) for _ in range(3)]}
    finally:
        writer.close()
    assert sorted(replies) == [61, 62, 63]
    for ident, (req, _) in probes.items():
        reply = verify_status_reply(req, replies[ident].raw)
        assert reply.code == pp.AccessAccept
        pkt = verified(replies[ident].raw, req.authenticator)
        assert [t for t, _ in pkt.attrs] == [rp.MESSAGE_AUTHENTICATOR, rp.PROXY_STATE]
    assert verified(replies[63].raw, auth).code == rp.ACCESS_ACCEPT
    assert metric("quotad_radius_requests_total", kind="status", outcome="ready") == answered + 2
    assert metric("quotad_radius_requests_total", kind="access", outcome="accept") == accepts + 1
    assert closes() == closed


def closes() -> dict[str, float]:
    return {r: metric("quotad_radsec_closed_total", reason=r) for r in CLOSE_REASONS}


async def test_r70_radsec_unserved_packets_dropped_by_reason_stream_goes_on(daemon: Daemon, pki: Pki) -> None:
    """Well formed and authentic, but not served: an Access-Request without Message-Authenticator
    (BlastRADIUS), a Status-Server without it (RFC 5997), a code RadSec does not take, a Proxy-State
    flood. Each is dropped and counted, the connection is not closed, and the next request on the
    same stream is answered."""
    reasons = ("no_message_authenticator", "wrong_code", "proxy_state", "bad_authenticator", "malformed")
    before, closed = {r: metric("quotad_radius_dropped_total", reason=r) for r in reasons}, closes()
    reader, writer = await connect(daemon, pki, pki.gateway)
    try:
        no_ma, _ = pap_request(11, message_authenticator=False)
        status_no_ma, _ = rp.encode_request(rp.STATUS_SERVER, 12, RADSEC, b"", message_authenticator=False)
        coa, _ = rp.encode_request(rp.COA_REQUEST, 14, RADSEC, rp.attr(rp.ACCT_SESSION_ID, b"x"))
        flood = rp.encode_request(rp.ACCESS_REQUEST, 15, RADSEC, b"".join(
            rp.attr(rp.PROXY_STATE, bytes([i]) * 253) for i in range(9)))[0]
        good, auth = pap_request(13)
        writer.write(no_ma + status_no_ma + coa + flood + good)
        reply = verified(await read_packet(reader), auth)
        assert (reply.code, reply.identifier) == (rp.ACCESS_ACCEPT, 13)
    finally:
        writer.close()
    assert {r: metric("quotad_radius_dropped_total", reason=r) - before[r] for r in before} == {
        "no_message_authenticator": 2, "wrong_code": 1, "proxy_state": 1, "bad_authenticator": 0, "malformed": 0}
    assert closes() == closed


def _access_attrs(body: bytes) -> bytes:
    """An Access-Request header (Identifier 20) around ``body``, Length as given by ``body``."""
    return bytes([rp.ACCESS_REQUEST, 20]) + (20 + len(body)).to_bytes(2, "big") + bytes(range(16)) + body


def _forged_ma(datagram: bytes) -> bytes:
    assert datagram[20] == rp.MESSAGE_AUTHENTICATOR
    return datagram[:22] + bytes(16) + datagram[38:]


def _accounting(status: int = 1) -> bytes:
    attrs = rp.attr_int(rp.ACCT_STATUS_TYPE, status) + rp.attr(rp.ACCT_SESSION_ID, b"rs-close")
    return rp.encode_request(rp.ACCOUNTING_REQUEST, 21, RADSEC, attrs, message_authenticator=False)[0]


CLOSING: list[tuple[str, Callable[[], bytes], str, str | None]] = [
    ("attribute length 0", lambda: _access_attrs(bytes([rp.USER_NAME, 0]) + b"abcd"), "malformed", "attribute"),
    ("attribute length 1", lambda: _access_attrs(bytes([rp.USER_NAME, 1]) + b"abcd"), "malformed", "attribute"),
    ("attribute past the Length", lambda: _access_attrs(bytes([rp.USER_NAME, 40]) + b"abcd"), "malformed",
     "attribute"),
    ("attribute header cut by the Length", lambda: _access_attrs(rp.attr(rp.USER_NAME, b"ab") + b"\x01"),
     "malformed", "attribute"),
    ("Access-Request signed with the UDP secret", lambda: pap_request(22, secret=b"testing123")[0],
     "bad_authenticator", None),
    ("Access-Request with a forged Message-Authenticator", lambda: _forged_ma(pap_request(23)[0]),
     "bad_authenticator", None),
    ("Accounting-Request with a bad Request Authenticator",
     lambda: (lambda d: d[:4] + bytes(16) + d[20:])(_accounting()), "bad_authenticator", None),
    ("Accounting-Request with a forged Message-Authenticator",
     lambda: rp.encode_request(rp.ACCOUNTING_REQUEST, 24, RADSEC, rp.attr(rp.MESSAGE_AUTHENTICATOR, bytes(16))
                               + rp.attr_int(rp.ACCT_STATUS_TYPE, 1), message_authenticator=False)[0],
     "bad_authenticator", None),
    ("Status-Server with a forged Message-Authenticator",
     lambda: _forged_ma(rp.encode_request(rp.STATUS_SERVER, 25, RADSEC)[0]), "bad_authenticator", None),
    ("Status-Server signed with the UDP secret", lambda: rp.encode_request(rp.STATUS_SERVER, 26, b"testing123")[0],
     "bad_authenticator", None),
]


@pytest.mark.parametrize(("frame", "reason", "cause"), [pytest.param(f, r, c, id=i) for i, f, r, c in CLOSING])
async def test_r72_radsec_silently_discard_closes_the_connection(
    daemon: Daemon, pki: Pki, frame: Callable[[], bytes], reason: str, cause: str | None
) -> None:
    """RFC 6613 §2.6: over a stream, a packet RADIUS says to discard silently (malformed, or a
    Request Authenticator or Message-Authenticator that does not verify) closes the connection. The
    good request written after it on the same stream is never answered; the drop is counted by
    reason (and cause), the close by reason; a new connection is then served."""
    drops = metric("quotad_radius_dropped_total", reason=reason)
    causes = {c: metric("quotad_radius_malformed_total", cause=c) for c in ("short", "length", "attribute")}
    closed = closes()
    reader, writer = await connect(daemon, pki, pki.gateway)
    try:
        writer.write(frame() + pap_request(27)[0])
        assert await closed_without_reply(reader)
    finally:
        writer.close()
    assert metric("quotad_radius_dropped_total", reason=reason) == drops + 1
    assert {c: metric("quotad_radius_malformed_total", cause=c) - n for c, n in causes.items()} == {
        c: float(c == cause) for c in causes}
    assert {r: n - closed[r] for r, n in closes().items()} == {r: float(r == reason) for r in CLOSE_REASONS}
    reader, writer = await connect(daemon, pki, pki.gateway)
    try:
        good, auth = pap_request(28)
        writer.write(good)
        assert verified(await read_packet(reader), auth).code == rp.ACCESS_ACCEPT
    finally:
        writer.close()


@pytest.mark.parametrize("length", [19, 4097])
async def test_r72_radsec_length_out_of_range_closes_the_stream(daemon: Daemon, pki: Pki, length: int) -> None:
    """RFC 6614 §2.5: a Length under 20 or over 4096 loses the framing; the stream is closed."""
    before, closed = metric("quotad_radius_malformed_total", cause="length"), closes()
    reader, writer = await connect(daemon, pki, pki.gateway)
    try:
        writer.write(bytes([1, 1]) + length.to_bytes(2, "big") + bytes(16))
        assert await closed_without_reply(reader)
    finally:
        writer.close()
    assert metric("quotad_radius_malformed_total", cause="length") == before + 1
    assert {r: n - closed[r] for r, n in closes().items()} == {r: float(r == "malformed") for r in CLOSE_REASONS}


async def test_r72_radsec_config_errors_name_the_key(redis_url: str, pki: Pki, tmp_path: Path) -> None:
    """Enabled without files, or with a file that is not a certificate: the key is named."""
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"radsec": {"enabled": True}})
    assert {k for k, _ in info.value.problems} == {"radsec.cert", "radsec.key", "radsec.ca", "radsec.clients"}
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    config = replace(radsec_config(redis_url, pki), radsec=replace(radsec_config(redis_url, pki).radsec,
                                                                   ca=str(bogus)))
    from quotad import app

    with pytest.raises(cfg.ConfigError) as info:
        app.validate(config)
    assert [k for k, _ in info.value.problems] == ["radsec.ca"]


def test_r73_radsec_port_0_with_several_workers_is_refused() -> None:
    """Each worker would listen on a different free port no gateway knows (as for the UDP ports)."""
    radsec = {"enabled": True, "port": 0, "cert": "c", "key": "k", "ca": "a", "clients": {"gw": "gw.example"}}
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"server": {"workers": 2}, "radsec": radsec})
    assert info.value.problems == [("radsec.port", "several workers share fixed ports: set a RadSec port, not 0")]
    assert cfg.from_dict({"server": {"workers": 2}, "radsec": {**radsec, "port": 2083}}).radsec.port == 2083


async def test_r72_radsec_random_frames_each_dropped_and_counted_closed_or_stream_goes_on(
    daemon: Daemon, pki: Pki
) -> None:
    """100 frames of random content (seeded) with a valid Length, each on a TLS stream of its own
    followed by a good request: each frame is dropped and counted once under one reason, none is
    answered; a frame that must be silently discarded (malformed, not authentic) closes its stream
    (the good request goes unanswered, the close is counted), any other leaves it open (the good
    request is answered)."""
    import random

    rng = random.Random(6614)
    closing = ("malformed", "bad_authenticator")
    reasons = (*closing, "wrong_code", "no_message_authenticator", "proxy_state")
    before, closed = {r: metric("quotad_radius_dropped_total", reason=r) for r in reasons}, closes()
    outcomes = {"closed": 0, "answered": 0}
    for i in range(100):
        length = rng.randrange(20, 300)
        body = bytearray(rng.randbytes(length))
        body[0] = rng.choice([rp.ACCESS_REQUEST, rp.ACCOUNTING_REQUEST, rp.STATUS_SERVER, rng.randrange(256)])
        body[2:4] = length.to_bytes(2, "big")
        drops = {r: metric("quotad_radius_dropped_total", reason=r) for r in reasons}
        reader, writer = await connect(daemon, pki, pki.gateway)
        try:
            good, auth = pap_request(i)
            writer.write(bytes(body) + good)
            try:
                reply = verified(await read_packet(reader), auth)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                outcomes["closed"] += 1
                counted = [r for r in reasons if metric("quotad_radius_dropped_total", reason=r) != drops[r]]
                assert len(counted) == 1 and counted[0] in closing, counted
            else:
                assert (reply.code, reply.identifier) == (rp.ACCESS_ACCEPT, i)
                outcomes["answered"] += 1
                counted = [r for r in reasons if metric("quotad_radius_dropped_total", reason=r) != drops[r]]
                assert len(counted) == 1 and counted[0] not in closing, counted
        finally:
            writer.close()
    assert sum(metric("quotad_radius_dropped_total", reason=r) - before[r] for r in reasons) == 100
    assert sum(metric("quotad_radius_dropped_total", reason=r) - before[r] for r in closing) == outcomes["closed"]
    assert sum(n - closed[r] for r, n in closes().items()) == outcomes["closed"]
    assert outcomes["closed"] > 0 and outcomes["answered"] > 0, outcomes


async def test_r70_radsec_shutdown_with_a_gateway_connected_is_prompt(redis_url: str, pki: Pki) -> None:
    """Stopping the daemon with a gateway's stream open: in-progress answers go out, the stream is
    closed, and stop() does not wait on the idle connection."""
    import time

    daemon = Daemon(radsec_config(redis_url, pki))
    await daemon.start()
    stopped = False
    try:
        assert daemon.store is not None
        await provision(daemon.store)
        reader, writer = await connect(daemon, pki, pki.gateway)
        datagram, auth = pap_request(40)
        writer.write(datagram)
        assert verified(await read_packet(reader), auth).code == rp.ACCESS_ACCEPT
        started = time.monotonic()
        await daemon.stop()
        stopped = True
        assert time.monotonic() - started < 3.0
        assert await closed_without_reply(reader)
        writer.close()
    finally:
        if not stopped:
            await daemon.stop()
