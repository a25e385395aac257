"""Speed changes of live sessions pushed to the gateway by CoA, and suspend by Disconnect
(R-15, R-21, R-24, R-30), with a real UDP listener playing the gateway's RFC 5176 port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from quotad.app import Daemon
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import (
    LINE,
    T0,
    Gateway,
    access_request,
    accounting_request,
    exchange,
    mini_with_gateway,
)

MB = 1_000_000


@pytest.fixture
async def setup(redis_url: str) -> AsyncIterator[tuple[Daemon, Gateway]]:
    async with mini_with_gateway(redis_url) as pair:
        yield pair


async def start_session(d: Daemon) -> bytes:
    datagram, _ = access_request(msisdn=LINE.msisdn, extra=rp.attr(rp.ACCT_SESSION_ID, b"gw-1"))
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None
    accept = rp.decode(raw)
    klass = accept.get(rp.CLASS)
    assert accept.code == rp.ACCESS_ACCEPT and klass is not None
    req, _ = accounting_request("gw-1", 1, 0, 0, identifier=40, msisdn=LINE.msisdn, klass=klass)
    assert await exchange(d.acct_port, req) is not None
    return klass


async def test_pool_exhausted_sends_one_coa_to_low_without_drop(setup: tuple[Daemon, Gateway]) -> None:
    """R-15 / R-24: the interim that empties slice and pool → one CoA-Request with the `low` profile,
    naming the session by the RFC 5176 attributes; no Disconnect."""
    d, gateway = setup
    klass = await start_session(d)
    req, _ = accounting_request("gw-1", 3, 150 * MB, 0, identifier=41, msisdn=LINE.msisdn, klass=klass)
    assert await exchange(d.acct_port, req) is not None
    coa = await gateway.next()
    assert coa.code == rp.COA_REQUEST
    assert coa.get(rp.FILTER_ID) == b"low"
    assert coa.get(rp.ACCT_SESSION_ID) == b"gw-1"
    assert coa.get(rp.CALLING_STATION_ID) == LINE.msisdn.encode()
    assert coa.get(rp.NAS_IP_ADDRESS) == bytes([127, 0, 0, 1])
    assert coa.get(rp.FRAMED_IP_ADDRESS) is not None
    assert coa.get_int(rp.EVENT_TIMESTAMP) == int(T0)
    await asyncio.sleep(0.2)
    assert [p.code for p in gateway.received] == [rp.COA_REQUEST]


async def test_coupon_bought_while_low_sends_coa_back_to_high(setup: tuple[Daemon, Gateway]) -> None:
    """R-24: buying coupons while at low speed → CoA back to `high-lte`."""
    d, gateway = setup
    assert d.store is not None and d.sessions is not None
    klass = await start_session(d)
    req, _ = accounting_request("gw-1", 3, 150 * MB, 0, identifier=42, msisdn=LINE.msisdn, klass=klass)
    assert await exchange(d.acct_port, req) is not None
    assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
    await d.store.charge("mini", 2, "test", T0)
    assert await d.sessions.settle(LINE) == "high"
    coa = await gateway.next()
    assert coa.get(rp.FILTER_ID) == b"high-lte"
    assert coa.vsa(rp.VENDOR_QUOTAD, 1) == (0).to_bytes(8, "big")


async def test_switch_off_sends_coa_to_low(setup: tuple[Daemon, Gateway]) -> None:
    """R-21: coupon switch OFF mid-session → CoA to `low`, the session is not dropped."""
    d, gateway = setup
    assert d.store is not None and d.sessions is not None
    await start_session(d)
    await d.store.set_coupon(LINE, False, T0)
    await d.sessions.on_line_change(LINE, "coupon")
    coa = await gateway.next()
    assert coa.code == rp.COA_REQUEST and coa.get(rp.FILTER_ID) == b"low"


async def test_suspend_sends_disconnect(setup: tuple[Daemon, Gateway]) -> None:
    """R-30: suspending a line in session → Disconnect-Request; its next attach is rejected."""
    d, gateway = setup
    assert d.store is not None and d.sessions is not None
    await start_session(d)
    await d.store.set_status(LINE, "suspended", T0)
    await d.sessions.on_line_change(LINE, "suspend")
    dm = await gateway.next()
    assert dm.code == rp.DISCONNECT_REQUEST and dm.get(rp.ACCT_SESSION_ID) == b"gw-1"
    datagram, _ = access_request(msisdn=LINE.msisdn, identifier=9)
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None
    reject = rp.decode(raw)
    assert reject.code == rp.ACCESS_REJECT and reject.get(rp.REPLY_MESSAGE) == b"Line is suspended"
