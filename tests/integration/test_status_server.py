"""Status-Server (RFC 5997) on the UDP ports, against a real daemon and a real Redis, with pyrad's
packet code (and FreeRADIUS's radclient where installed) as the peers that probe quotad.

Answered at once, with Message-Authenticator: Access-Accept on the authentication port,
Accounting-Response on the accounting port. Never handed to the AAA handlers, never through the
reply cache. Not ready (Redis down): tests/reliability/test_fault_redis.py."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator

import pytest
from pyrad import packet as pp

from quotad import metrics
from quotad.app import Daemon
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import SECRET, daemon_config, exchange, running_daemon
from tests.integration.pyrad_gateway import status_server, verify_status_reply

REPLY = {"auth": rp.ACCESS_ACCEPT, "acct": rp.ACCOUNTING_RESPONSE}


def metric(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def status_answered() -> float:
    return metric("quotad_radius_requests_total", kind="status", outcome="ready")


def aaa_counts() -> dict[str, float]:
    """What the AAA handlers count and time: untouched by a Status-Server."""
    out = {f"{kind}:{outcome}": metric("quotad_radius_requests_total", kind=kind, outcome=outcome)
           for kind, outcome in (("access", "accept"), ("access", "reject"), ("accounting", "stored"),
                                 ("accounting", "unknown_line"), ("accounting", "nas_on_off"))}
    for kind in ("access", "accounting"):
        out[f"latency:{kind}"] = metric("quotad_radius_request_duration_seconds_count", kind=kind)
    for action in ("resent", "dropped_in_progress"):
        out[f"duplicate:{action}"] = metric("quotad_radius_duplicates_total", action=action)
    return out


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(daemon_config(redis_url)) as d:
        yield d


def port_of(daemon: Daemon, kind: str) -> int:
    return daemon.auth_port if kind == "auth" else daemon.acct_port


@pytest.mark.parametrize("kind", ["auth", "acct"])
async def test_status_server_answered_on_each_port_with_message_authenticator(daemon: Daemon, kind: str) -> None:
    """RFC 5997: Access-Accept on the authentication port, Accounting-Response on the accounting
    port; pyrad verifies the Response Authenticator and the (required) Message-Authenticator; the
    reply carries nothing else. Counted as kind="status"; no handler, no reply cache entry."""
    assert daemon.auth is not None
    before, answered, cached = aaa_counts(), status_answered(), len(daemon.auth.cache)
    req, datagram = status_server(kind, identifier=21)
    raw = await exchange(port_of(daemon, kind), datagram)
    reply = verify_status_reply(req, raw)
    assert reply.code == REPLY[kind]
    assert raw is not None
    pkt = rp.decode(raw)
    assert (pkt.code, pkt.identifier) == (REPLY[kind], 21)
    assert [t for t, _ in pkt.attrs] == [rp.MESSAGE_AUTHENTICATOR]
    assert rp.verify_message_authenticator(pkt, SECRET, req.authenticator, request_code=rp.STATUS_SERVER) is True
    assert status_answered() == answered + 1
    assert aaa_counts() == before
    assert len(daemon.auth.cache) == cached


@pytest.mark.parametrize("kind", ["auth", "acct"])
async def test_status_server_proxy_states_copied_in_order(daemon: Daemon, kind: str) -> None:
    req, datagram = status_server(kind, identifier=22, proxy_states=(b"proxy-1", b"\x00\x01\x02"))
    raw = await exchange(port_of(daemon, kind), datagram)
    verify_status_reply(req, raw)
    assert raw is not None
    assert rp.decode(raw).get_all(rp.PROXY_STATE) == [b"proxy-1", b"\x00\x01\x02"]


async def test_status_server_resent_is_answered_afresh_not_from_the_reply_cache(daemon: Daemon) -> None:
    """The same Status-Server datagram twice from one socket (a retransmission, RFC 5080's key):
    both answered by the server, neither recognised as a duplicate nor cached."""
    assert daemon.auth is not None
    before, answered, cached = aaa_counts(), status_answered(), len(daemon.auth.cache)
    req, datagram = status_server("auth", identifier=23)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        replies = []
        for _ in range(2):
            await loop.sock_sendto(sock, datagram, ("127.0.0.1", daemon.auth_port))
            replies.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 1))
    finally:
        sock.close()
    for raw in replies:
        assert verify_status_reply(req, raw).code == rp.ACCESS_ACCEPT
    assert status_answered() == answered + 2
    assert aaa_counts() == before
    assert len(daemon.auth.cache) == cached


def _forged(datagram: bytes) -> bytes:
    pkt = rp.decode(datagram)
    assert pkt.attrs[0][0] == rp.MESSAGE_AUTHENTICATOR
    return datagram[:22] + bytes(16) + datagram[38:]


@pytest.mark.parametrize("kind", ["auth", "acct"])
@pytest.mark.parametrize(("case", "reason"), [
    ("no Message-Authenticator", "no_message_authenticator"),
    ("forged Message-Authenticator", "bad_authenticator"),
    ("another secret", "bad_authenticator"),
])
async def test_status_server_without_a_valid_message_authenticator_dropped(
    daemon: Daemon, kind: str, case: str, reason: str
) -> None:
    """RFC 5997 §3: a Status-Server must carry a valid Message-Authenticator; without one it is
    dropped unanswered and counted, as an Access-Request would be."""
    before = metric("quotad_radius_dropped_total", reason=reason)
    answered = status_answered()
    if case == "no Message-Authenticator":
        _, datagram = status_server(kind, message_authenticator=False)
    elif case == "forged Message-Authenticator":
        datagram = _forged(status_server(kind)[1])
    else:
        _, datagram = status_server(kind, secret=b"not-the-secret")
    assert await exchange(port_of(daemon, kind), datagram, timeout=0.3) is None
    assert metric("quotad_radius_dropped_total", reason=reason) == before + 1
    assert status_answered() == answered


async def test_other_codes_still_wrong_code_on_each_port(daemon: Daemon) -> None:
    """Only the port's own request code and Status-Server are taken: an Access-Request on the
    accounting port and a CoA-Request on either are still dropped as wrong_code."""
    from tests.integration.daemon_fixture import access_request

    before = metric("quotad_radius_dropped_total", reason="wrong_code")
    assert await exchange(daemon.acct_port, access_request()[0], timeout=0.3) is None
    for port in (daemon.auth_port, daemon.acct_port):
        assert await exchange(port, rp.encode_request(rp.COA_REQUEST, 3, SECRET)[0], timeout=0.3) is None
    assert metric("quotad_radius_dropped_total", reason="wrong_code") == before + 3


needs_radclient = pytest.mark.skipif(shutil.which("radclient") is None, reason="radclient not installed")


@needs_radclient
@pytest.mark.parametrize(("kind", "expected"), [("auth", "Access-Accept"), ("acct", "Accounting-Response")])
async def test_radclient_status(daemon: Daemon, kind: str, expected: str) -> None:
    """FreeRADIUS's radclient `status` (Status-Server with Message-Authenticator) on each port."""
    answered = status_answered()
    out = await asyncio.to_thread(
        subprocess.run,
        ["radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port_of(daemon, kind)}", "status", "testing123"],
        input="Message-Authenticator = 0x00\n", capture_output=True, text=True, timeout=20,
    )
    assert f"Received {expected} Id" in out.stdout, out.stdout + out.stderr
    assert "Message-Authenticator = 0x" in out.stdout.split("Received", 1)[1]
    assert out.returncode == 0, out.stdout + out.stderr
    assert status_answered() == answered + 1


def test_pyrad_builds_what_the_rfc_says() -> None:
    """The probe itself, as the peer under test builds it: code 12, a Message-Authenticator first."""
    for kind in ("auth", "acct"):
        _, datagram = status_server(kind)
        pkt = rp.decode(datagram)
        assert pkt.code == pp.StatusServer == rp.STATUS_SERVER
        assert pkt.attrs[0][0] == rp.MESSAGE_AUTHENTICATOR
        assert rp.verify_message_authenticator(pkt, SECRET) is True
