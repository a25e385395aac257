"""Speed changes of live sessions, end to end (R-22, R-24, R-70): the 3-day limit crossed and
cleared with a moved clock, exactly one CoA from two daemons on one Redis, and CoA outcomes
(NAK, timeout after retries) on /metrics with the [coa] settings. Real Redis, real UDP listener
playing the gateway's RFC 5176 port."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from quotad import config as cfg
from quotad.app import Daemon, client_table_from
from quotad.clock import SettableClock
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
from tests.integration.test_coa_e2e import Gateway

MB = 1_000_000
DAY = 86400
LIGHT = LineRef("light", "819000000011")
COA_SECRET = b"coa-only-secret-1"


class Counting:
    """Sends accounting for one session with rising cumulative counters."""

    def __init__(self, d: Daemon, ref: LineRef, klass: bytes) -> None:
        self.d, self.ref, self.klass, self.ident = d, ref, klass, 0

    async def report(self, status: int, octets: int) -> None:
        self.ident += 1
        req, _ = accounting_request("gw-1", status, octets, 0, identifier=self.ident, msisdn=self.ref.msisdn,
                                    klass=self.klass)
        assert await exchange(self.d.acct_port, req) is not None


async def start_session(d: Daemon, ref: LineRef) -> Counting:
    datagram, _ = access_request(msisdn=ref.msisdn, extra=rp.attr(rp.ACCT_SESSION_ID, b"gw-1"))
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None
    klass = rp.decode(raw).get(rp.CLASS)
    assert klass is not None
    session = Counting(d, ref, klass)
    await session.report(1, 0)
    return session


async def gateway_on(port: int, gateway: asyncio.DatagramProtocol, stack: AsyncExitStack) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", port))
    stack.callback(transport.close)


async def no_more(gateway: Gateway, count: int) -> None:
    await asyncio.sleep(0.2)
    assert len(gateway.received) == count


async def test_r22_light_start_over_120mb_at_low_speed_restricted_then_low_when_window_moves(redis_url: str) -> None:
    """R-22 / R-24: light_start at low speed (switch OFF) using 121 MB within the 3 Japan days →
    one CoA to `restricted`; two days later the usage is still in the window (no CoA); on the
    third day it has left it, and the next report brings one CoA back to `low`."""
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    async with AsyncExitStack() as stack:
        await gateway_on(port, gateway, stack)
        d = await stack.enter_async_context(running_daemon(daemon_config(redis_url, coa_port=port)))
        assert d.store is not None and d.sessions is not None and isinstance(d.clock, SettableClock)
        await d.store.provisioning.create_contract("light", "light_start", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("light", LIGHT.msisdn, "8981100000000000110", "440100000000011", "nano",
                                            False, T0)
        session = await start_session(d, LIGHT)
        await d.store.provisioning.set_coupon(LIGHT, False, T0)
        await d.sessions.on_line_change(LIGHT, "coupon")
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"

        await session.report(3, 120 * MB)  # exactly the limit: not past it
        await no_more(gateway, 1)
        await session.report(3, 121 * MB)
        coa = await gateway.next()
        assert (coa.code, coa.get(rp.FILTER_ID), coa.vsa(rp.VENDOR_QUOTAD, 3)) == (
            rp.COA_REQUEST, b"restricted", b"restricted")
        assert coa.vsa(rp.VENDOR_QUOTAD, 4) == (32_000).to_bytes(4, "big")
        assert coa.get(rp.ACCT_SESSION_ID) == b"gw-1"

        d.clock.advance(2 * DAY)  # T0's day is still one of the 3
        await session.report(3, 122 * MB)
        await no_more(gateway, 2)
        d.clock.advance(DAY)  # now it is not
        await session.report(3, 123 * MB)
        coa = await gateway.next()
        assert (coa.get(rp.FILTER_ID), coa.get_int(rp.EVENT_TIMESTAMP)) == (b"low", int(T0 + 3 * DAY))
        await no_more(gateway, 3)
        assert (await d.store.line_facts(LIGHT, T0 + 3 * DAY)).low_3day == 2 * MB


async def test_r24_two_daemons_on_one_redis_one_transition_one_coa(redis_url: str) -> None:
    """R-24: two daemons (own Redis connections) settle the same line at the same time, ten
    switch flips over: the compare-and-set lets exactly one of them send each CoA."""
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    line = LineRef("mini", "819000000021")
    async with AsyncExitStack() as stack:
        await gateway_on(port, gateway, stack)
        config = daemon_config(redis_url, coa_port=port)
        a = await stack.enter_async_context(running_daemon(config))
        b = await stack.enter_async_context(running_daemon(config))
        assert a.store is not None and a.sessions is not None and b.sessions is not None
        await a.store.provisioning.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), T0)
        await a.store.provisioning.add_line("mini", line.msisdn, "8981100000000000219", "440100000000021", "nano",
                                            False, T0)
        await a.store.provisioning.charge("mini", 1, "test", T0)
        await start_session(a, line)
        lost = 0
        for store in (a.store, b.store):
            assert store is not None
            cas = store.set_speed

            async def counted(ref: LineRef, expected: str, new: str, cas: Callable[..., Awaitable[bool]] = cas) -> bool:
                nonlocal lost
                won = await cas(ref, expected, new)
                lost += not won
                return won

            store.set_speed = counted  # type: ignore[method-assign]
        for flip in range(10):
            on = flip % 2 == 1
            await a.store.provisioning.set_coupon(line, on, T0)
            decided = await asyncio.gather(a.sessions.redecide(line), b.sessions.redecide(line))
            assert sorted(decided) == [("high" if on else "low", False), ("high" if on else "low", True)]
            coa = await gateway.next()
            assert coa.get(rp.FILTER_ID) == (b"high-lte" if on else b"low")
            await no_more(gateway, flip + 1)
        assert [p.code for p in gateway.received] == [rp.COA_REQUEST] * 10
        assert lost == 10, "each time both daemons decided the change, and one lost the compare-and-set"


class Answering(asyncio.DatagramProtocol):
    """A gateway's CoA port checking the CoA secret: NAKs (Error-Cause 506, resources unavailable:
    the session stays, where a 503 would end it) or stays silent."""

    def __init__(self) -> None:
        self.mode = "nak"
        self.received: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = rp.decode(data)
        assert rp.verify_request_authenticator(pkt, COA_SECRET)
        assert rp.verify_message_authenticator(pkt, COA_SECRET) is True
        self.received.append(data)
        if self.mode == "nak":
            nak = rp.encode_response(rp.COA_NAK, pkt.identifier, pkt.authenticator, COA_SECRET,
                                     rp.attr_int(rp.ERROR_CAUSE, 506))
            self.transport.sendto(nak, addr)  # type: ignore[attr-defined]


async def coa_metrics(http: aiohttp.ClientSession, port: int) -> dict[str, float]:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "quotad_coa_requests_total" and s.labels["kind"] == "coa":
                out[s.labels["outcome"]] = s.value
            if s.name == "quotad_coa_retries_total" and s.labels["kind"] == "coa":
                out["retries"] = s.value
    return out


async def test_r70_coa_nak_and_timeout_counted_on_metrics_with_coa_settings(redis_url: str) -> None:
    """R-70 / R-74 with [coa]: the CoA goes to coa.port signed with the client's coa_secret; a NAK is
    an answer (not resent) and counted; a silent gateway gets 1 + coa.retries identical datagrams,
    then the timeout is counted — all read back from /metrics."""
    port = free_port(socket.SOCK_DGRAM)
    gateway = Answering()
    base = daemon_config(redis_url, coa_port=0)
    config = replace(
        base,
        clients=tuple(replace(c, coa_secret=cfg.Secret(COA_SECRET.decode())) for c in base.clients),
        coa=cfg.CoaSettings(port=port, timeout=0.05, retries=2, backoff=1.5, max_timeout=0.1),
    )
    line = LineRef("mini", "819000000021")
    async with AsyncExitStack() as stack:
        await gateway_on(port, gateway, stack)
        d = await stack.enter_async_context(running_daemon(config))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        assert d.store is not None and d.sessions is not None
        await d.store.provisioning.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("mini", line.msisdn, "8981100000000000219", "440100000000021", "nano",
                                            False, T0)
        await d.store.provisioning.charge("mini", 1, "test", T0)
        await start_session(d, line)
        before = await coa_metrics(http, d.http_port)

        await d.store.provisioning.set_coupon(line, False, T0)
        await d.sessions.on_line_change(line, "coupon")
        await d.sessions.drain(5.0)
        after_nak = await coa_metrics(http, d.http_port)
        assert len(gateway.received) == 1
        assert after_nak["nak"] == before.get("nak", 0) + 1
        assert after_nak.get("retries", 0) == before.get("retries", 0)

        gateway.mode = "silent"
        await d.store.provisioning.set_coupon(line, True, T0)
        await d.sessions.on_line_change(line, "coupon")
        await d.sessions.drain(5.0)
        after = await coa_metrics(http, d.http_port)
        assert len(gateway.received) == 4 and len(set(gateway.received[1:])) == 1
        assert after["timeout"] == before.get("timeout", 0) + 1
        assert after["retries"] == after_nak.get("retries", 0) + 2
        assert after["nak"] == after_nak["nak"]


def test_r70_client_without_coa_settings_uses_coa_port_and_its_secret() -> None:
    """R-70: a client with coa_port 0 and no coa_secret gets coa.port and its RADIUS secret."""
    config = cfg.from_dict({"coa": {"port": 4799}})
    client = client_table_from(config).find("127.0.0.1")
    assert client is not None and (client.coa_port, client.coa_secret or client.secret) == (4799, SECRET)
