"""End to end over real UDP against a real daemon and a real Redis (R-1, R-2, R-4, R-5, R-70, R-71, R-72)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from quotad import metrics
from quotad.aaa import classattr
from quotad.app import Daemon
from quotad.quota.store import QuotaStore
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import (
    SECRET,
    T0,
    access_request,
    accounting_request,
    daemon_config,
    exchange,
    running_daemon,
)


def metric(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def provision(store: QuotaStore) -> None:
    await store.provisioning.create_contract("fam", "family_share", dt.date(2026, 11, 1), T0)
    await store.provisioning.add_line("fam", "819000000001", "8981100000000000011", "440100000000001", "nano", False,
                                      T0)
    await store.provisioning.add_line("fam", "819000000002", "8981100000000000029", "440100000000002", "nano", False,
                                      T0)


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(daemon_config(redis_url)) as d:
        await provision(d.store)
        yield d


def reply_of(raw: bytes | None, request_auth: bytes) -> rp.Packet:
    assert raw is not None, "no reply"
    pkt = rp.decode(raw)
    assert rp.verify_response_authenticator(pkt, request_auth, SECRET)
    if pkt.code == rp.ACCOUNTING_RESPONSE:
        assert rp.verify_message_authenticator(pkt, SECRET, request_auth) is None
        return pkt
    assert pkt.attrs[0][0] == rp.MESSAGE_AUTHENTICATOR, "R-70: Message-Authenticator first in every reply"
    assert rp.verify_message_authenticator(pkt, SECRET, request_auth) is True
    return pkt


async def test_pap_accept_carries_timers_class_ip_and_slice(daemon: Daemon) -> None:
    """R-1 PAP with the APN's credentials; R-5 timers, address, slice; Class names the line."""
    datagram, auth = access_request()
    pkt = reply_of(await exchange(daemon.auth_port, datagram), auth)
    assert pkt.code == rp.ACCESS_ACCEPT
    assert pkt.get_int(rp.SESSION_TIMEOUT) == 86400
    assert pkt.get_int(rp.IDLE_TIMEOUT) == 7200
    assert pkt.get_int(rp.ACCT_INTERIM_INTERVAL) == 600
    info = classattr.decode(pkt.get(rp.CLASS))
    assert info is not None and (info.contract_id, info.msisdn) == ("fam", "819000000001")
    framed = pkt.get(rp.FRAMED_IP_ADDRESS)
    assert framed is not None and framed[:2] == bytes([100, 64])
    assert pkt.vsa(rp.VENDOR_QUOTAD, 1) == (10_000_000).to_bytes(8, "big")
    assert pkt.get(rp.FILTER_ID) == b"high-lte"


@pytest.mark.parametrize("mode", ["challenge", "authenticator"])
async def test_chap_accept(daemon: Daemon, mode: str) -> None:
    """R-1 CHAP, with CHAP-Challenge and with the Request Authenticator as the challenge."""
    datagram, auth = access_request(chap=mode)
    assert reply_of(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_ACCEPT


@pytest.mark.parametrize(
    ("kwargs", "reason", "message"),
    [
        ({"password": b"wrong"}, "bad_credentials", b"Authentication failed"),
        ({"chap": "challenge", "password": b"wrong"}, "bad_credentials", b"Authentication failed"),
        ({"user": b"someone"}, "bad_credentials", b"Authentication failed"),
        ({"apn": b"other.apn"}, "unknown_apn", b"Unknown APN"),
        ({"msisdn": "819099999999"}, "unknown_sim", b"Unknown SIM"),
        (
            {"extra": rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC, b"31026")},
            "roaming",
            b"Roaming is not allowed on this APN",
        ),
    ],
)
async def test_rejects_with_reason(daemon: Daemon, kwargs: dict, reason: str, message: bytes) -> None:
    """R-1 wrong credentials / unknown APN, R-2 unknown SIM, R-4 roaming → Access-Reject with Reply-Message."""
    before = metric("quotad_radius_rejects_total", reason=reason)
    datagram, auth = access_request(**kwargs)
    pkt = reply_of(await exchange(daemon.auth_port, datagram), auth)
    assert pkt.code == rp.ACCESS_REJECT
    assert pkt.get(rp.REPLY_MESSAGE) == message
    assert metric("quotad_radius_rejects_total", reason=reason) == before + 1


async def test_home_network_is_not_roaming(daemon: Daemon) -> None:
    """R-4: the APN's home network (docomo 44010) is accepted."""
    extra = rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC, b"44010")
    datagram, auth = access_request(extra=extra)
    assert reply_of(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_ACCEPT


async def test_imsi_identifies_the_line_before_msisdn(daemon: Daemon) -> None:
    """R-2: 3GPP-IMSI wins over Calling-Station-Id."""
    datagram, auth = access_request(msisdn="819099999999", imsi="440100000000002")
    pkt = reply_of(await exchange(daemon.auth_port, datagram), auth)
    info = classattr.decode(pkt.get(rp.CLASS))
    assert pkt.code == rp.ACCESS_ACCEPT and info is not None and info.msisdn == "819000000002"


@pytest.mark.parametrize("tamper", ["missing", "wrong"])
async def test_access_request_without_valid_message_authenticator_dropped(daemon: Daemon, tamper: str) -> None:
    """R-70 BlastRADIUS: no Message-Authenticator, or a wrong one → dropped, counted, no answer."""
    reason = "no_message_authenticator" if tamper == "missing" else "bad_authenticator"
    before = metric("quotad_radius_dropped_total", reason=reason)
    datagram, _ = access_request(message_authenticator=tamper == "wrong")
    if tamper == "wrong":
        pkt = rp.decode(datagram)
        offset = next(i for i in range(20, len(datagram)) if datagram[i] == rp.MESSAGE_AUTHENTICATOR)
        assert pkt.attrs[0][0] == rp.MESSAGE_AUTHENTICATOR
        datagram = datagram[: offset + 2] + bytes(16) + datagram[offset + 18 :]
    assert await exchange(daemon.auth_port, datagram, timeout=0.3) is None
    assert metric("quotad_radius_dropped_total", reason=reason) == before + 1


async def test_unknown_client_dropped(daemon: Daemon) -> None:
    """R-70: a source address with no client entry is dropped and counted."""
    before = metric("quotad_radius_dropped_total", reason="unknown_client")
    datagram, _ = access_request()
    assert await exchange(daemon.auth_port, datagram, timeout=0.3, source="127.0.0.2") is None
    assert metric("quotad_radius_dropped_total", reason="unknown_client") == before + 1


async def test_duplicate_gets_cached_reply_and_is_processed_once(daemon: Daemon) -> None:
    """R-70 / RFC 5080: a retransmission gets the same reply bytes and draws no second slice."""
    import asyncio
    import socket

    datagram, auth = access_request()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    before = metric("quotad_radius_duplicates_total", action="resent")
    try:
        await loop.sock_sendto(sock, datagram, ("127.0.0.1", daemon.auth_port))
        first = await asyncio.wait_for(loop.sock_recv(sock, 4096), 1)
        await loop.sock_sendto(sock, datagram, ("127.0.0.1", daemon.auth_port))
        second = await asyncio.wait_for(loop.sock_recv(sock, 4096), 1)
    finally:
        sock.close()
    assert first == second
    reply_of(first, auth)
    assert metric("quotad_radius_duplicates_total", action="resent") == before + 1
    view = await daemon.store.views.contract_view("fam", T0)
    # one slice drawn from the 1 GB bundle pro-rated for a start on 1 Nov: whole month, 1 GB
    assert view.pool == 1_000_000_000 - 10_000_000


async def test_malformed_dropped_and_next_answered(daemon: Daemon) -> None:
    """R-72: a length field larger than the datagram is dropped and counted; the server goes on."""
    before = metric("quotad_radius_dropped_total", reason="malformed")
    datagram, auth = access_request()
    bad = datagram[:2] + (len(datagram) + 10).to_bytes(2, "big") + datagram[4:]
    assert await exchange(daemon.auth_port, bad, timeout=0.3) is None
    assert metric("quotad_radius_dropped_total", reason="malformed") == before + 1
    assert reply_of(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_ACCEPT


async def test_accounting_stored_then_acknowledged(daemon: Daemon) -> None:
    """R-71: Start and Interim are answered once stored; a replayed Interim adds nothing."""
    datagram, auth = access_request(extra=rp.attr(rp.ACCT_SESSION_ID, b"s1"))
    accept = reply_of(await exchange(daemon.auth_port, datagram), auth)
    klass = accept.get(rp.CLASS)
    for ident, (status, octets) in enumerate([(1, 0), (3, 3_000_000), (3, 3_000_000)]):
        req, req_auth = accounting_request("s1", status, octets, 1_000_000, identifier=ident + 10, klass=klass)
        reply = reply_of(await exchange(daemon.acct_port, req), req_auth)
        assert reply.code == rp.ACCOUNTING_RESPONSE
    view = await daemon.store.views.contract_view("fam", T0)
    line = next(ln for ln in view.lines if ln.msisdn == "819000000001")
    assert line.held == 10_000_000 - 4_000_000
    assert line.sessions == 1


async def test_accounting_with_bad_authenticator_dropped(daemon: Daemon) -> None:
    """R-70: an Accounting-Request whose Request Authenticator does not verify is dropped."""
    before = metric("quotad_radius_dropped_total", reason="bad_authenticator")
    req, _ = accounting_request("s2", 1)
    forged = req[:4] + bytes(16) + req[20:]
    assert await exchange(daemon.acct_port, forged, timeout=0.3) is None
    assert metric("quotad_radius_dropped_total", reason="bad_authenticator") == before + 1


async def test_resend_after_the_duplicate_window_is_processed_afresh(redis_url: str) -> None:
    """RFC 5080 §2.2.2 window (here 0.5 s): a resend inside it gets the cached reply; a resend after
    it, with nothing else arriving in between (an idle port), is a new request, processed again."""
    import asyncio
    import socket

    async with running_daemon(daemon_config(redis_url, duplicate_window=0.5)) as d:
        await provision(d.store)
        datagram, auth = access_request(identifier=60)
        loop = asyncio.get_running_loop()
        accepts = metric("quotad_radius_requests_total", kind="access", outcome="accept")
        resent = metric("quotad_radius_duplicates_total", action="resent")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        replies = []
        try:
            for pause in (0.0, 0.1, 0.8):
                await asyncio.sleep(pause)
                await loop.sock_sendto(sock, datagram, ("127.0.0.1", d.auth_port))
                replies.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 1))
        finally:
            sock.close()
        assert [reply_of(r, auth).code for r in replies] == [rp.ACCESS_ACCEPT] * 3
        assert replies[1] == replies[0]  # the cached reply, byte for byte
        assert metric("quotad_radius_duplicates_total", action="resent") == resent + 1
        assert metric("quotad_radius_requests_total", kind="access", outcome="accept") == accepts + 2
