"""The quota path end to end over UDP: attach → slice, accounting → slices drawn, pool exhausted →
low speed (R-5, R-6, R-12, R-15, R-16, R-71), against a real daemon and a real Redis."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from quotad.app import Daemon
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

MB = 1_000_000


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(daemon_config(redis_url)) as d:
        assert d.store is not None
        await d.store.provisioning.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("mini", "819000000021", "8981100000000000219", "440100000000021", "nano",
                                            False, T0)
        await d.store.provisioning.charge("mini", 1, "test", T0)
        await d.store.provisioning.create_contract("light", "light_start", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("light", "819000000011", "8981100000000000110", "440100000000011", "nano",
                                            False, T0)
        yield d


async def attach(d: Daemon, msisdn: str, extra: bytes = b"", ident: int = 1) -> rp.Packet:
    datagram, auth = access_request(msisdn=msisdn, extra=extra, identifier=ident)
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None
    pkt = rp.decode(raw)
    assert rp.verify_response_authenticator(pkt, auth, SECRET)
    return pkt


async def account(d: Daemon, klass: bytes, status: int, octets: int, ident: int) -> None:
    req, auth = accounting_request("gw-1", status, octets, 0, identifier=ident, msisdn="819000000021", klass=klass)
    raw = await exchange(d.acct_port, req)
    assert raw is not None
    reply = rp.decode(raw)
    assert reply.code == rp.ACCOUNTING_RESPONSE and rp.verify_response_authenticator(reply, auth, SECRET)


def granted(pkt: rp.Packet) -> int:
    value = pkt.vsa(rp.VENDOR_QUOTAD, 1)
    assert value is not None
    return int.from_bytes(value, "big")


async def test_slices_drawn_then_low_speed_when_pool_and_slice_are_empty(daemon: Daemon) -> None:
    """R-12 slice on attach; R-16 usage draws slices, overrun recorded; R-15 empty → `low`."""
    assert daemon.store is not None
    accept = await attach(daemon, "819000000021")
    assert accept.code == rp.ACCESS_ACCEPT
    assert accept.get(rp.FILTER_ID) == b"high-lte"
    assert granted(accept) == 10 * MB
    assert accept.get(rp.FRAMED_IP_ADDRESS) is not None
    klass = accept.get(rp.CLASS)
    assert klass is not None

    await account(daemon, klass, 1, 0, ident=10)
    await account(daemon, klass, 3, 25 * MB, ident=11)
    view = await daemon.store.views.contract_view("mini", T0)
    line = view.lines[0]
    # 25 MB used: the 10 MB held, then two more slices drawn (20 MB), 5 MB left held
    assert (line.held, view.pool) == (5 * MB, 70 * MB)
    assert line.sessions == 1, "the attach's session is the one the gateway reports (Class)"
    sessions = await daemon.store.live_sessions(view_ref(view))
    assert [s.acct_session_id for s in sessions] == ["gw-1"]

    await account(daemon, klass, 3, 200 * MB, ident=12)
    view = await daemon.store.views.contract_view("mini", T0)
    line = view.lines[0]
    assert (line.held, view.pool, line.overrun) == (0, 0, 100 * MB)
    assert line.speed == "low"

    again = await attach(daemon, "819000000021", ident=2)
    assert again.code == rp.ACCESS_ACCEPT
    assert again.get(rp.FILTER_ID) == b"low"
    assert granted(again) == 0


def view_ref(view: object) -> object:
    from quotad.quota.model import LineRef

    return LineRef(view.contract_id, view.lines[0].msisdn)  # type: ignore[attr-defined]


async def test_3g_session_gets_the_3g_profile(daemon: Daemon) -> None:
    """R-6: 3GPP-RAT-Type UTRAN → `high-3g`."""
    rat = rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_RAT_TYPE, b"\x01")
    accept = await attach(daemon, "819000000011", extra=rat)
    assert accept.code == rp.ACCESS_ACCEPT
    assert accept.get(rp.FILTER_ID) == b"high-3g"


async def test_authorize_only_reauthorization_gets_next_slice(daemon: Daemon) -> None:
    """Prepaid re-authorization (Service-Type Authorize-Only) of a live session: the next slice."""
    assert daemon.store is not None
    sid = rp.attr(rp.ACCT_SESSION_ID, b"gw-9")
    first = await attach(daemon, "819000000011", extra=sid)
    klass = first.get(rp.CLASS)
    assert klass is not None and granted(first) == 10 * MB
    req, _ = accounting_request("gw-9", 3, 10 * MB, 0, identifier=30, msisdn="819000000011", klass=klass)
    assert await exchange(daemon.acct_port, req) is not None
    reauth = sid + rp.attr_int(rp.SERVICE_TYPE, 17)
    second = await attach(daemon, "819000000011", extra=reauth, ident=3)
    assert second.code == rp.ACCESS_ACCEPT
    assert granted(second) == 10 * MB
    assert second.get(rp.FILTER_ID) == b"high-lte"
