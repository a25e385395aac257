"""Speed changes of live sessions pushed to the gateway by CoA, and suspend by Disconnect
(R-15, R-21, R-24, R-30), with a real UDP listener playing the gateway's RFC 5176 port."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator

import pytest

from quotad.app import Daemon
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from tests.conftest import free_port
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
LINE = LineRef("mini", "819000000021")


class Gateway(asyncio.DatagramProtocol):
    """Answers every CoA/Disconnect with an ACK and keeps what it received."""

    def __init__(self) -> None:
        self.received: list[rp.Packet] = []
        self.arrived = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = rp.decode(data)
        assert rp.verify_request_authenticator(pkt, SECRET)
        assert rp.verify_message_authenticator(pkt, SECRET) is True
        self.received.append(pkt)
        ack = rp.COA_ACK if pkt.code == rp.COA_REQUEST else rp.DISCONNECT_ACK
        self.transport.sendto(rp.encode_response(ack, pkt.identifier, pkt.authenticator, SECRET), addr)  # type: ignore[attr-defined]
        self.arrived.set()

    async def next(self, timeout: float = 3.0) -> rp.Packet:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        self.arrived.clear()
        return self.received[-1]


@pytest.fixture
async def setup(redis_url: str) -> AsyncIterator[tuple[Daemon, Gateway]]:
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", port))
    try:
        async with running_daemon(daemon_config(redis_url, coa_port=port)) as d:
            assert d.store is not None
            await d.store.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), T0)
            await d.store.add_line("mini", LINE.msisdn, "8981100000000000219", "440100000000021", "nano", False, T0)
            await d.store.charge("mini", 1, "test", T0)
            yield d, gateway
    finally:
        transport.close()


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
