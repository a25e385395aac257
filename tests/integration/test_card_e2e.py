"""Card change and lost-card replacement over the wire (R-32, R-33): two quotad daemons on one
Redis (separate connections and index caches, as two processes), the operator API over HTTP,
and a real UDP listener playing the gateway's RFC 5176 port."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from quotad.app import Daemon
from quotad.config import ApiSettings, Secret, TokenSettings
from quotad.quota import keys as k
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from tests.conftest import free_port
from tests.integration.daemon_fixture import (
    T0,
    access_request,
    accounting_request,
    daemon_config,
    exchange,
    running_daemon,
)
from tests.integration.test_coa_e2e import Gateway

MB = 1_000_000
TOKEN = "operator-token-0123456789abcdef"
LINE = LineRef("light", "819000000011")
OLD_ICCID, OLD_IMSI = "8981100000000000110", "440100000000011"
NEW_ICCID, NEW_IMSI = "8981100000000000128", "440100000000012"


class Pair:
    """Daemons A and B on one Redis, and the gateway both send CoA/Disconnect to."""

    def __init__(self, a: Daemon, b: Daemon, gateway: Gateway, http: aiohttp.ClientSession) -> None:
        self.a, self.b, self.gateway, self.http = a, b, gateway, http
        self.ident = 0

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.a.http_port}{path}"
        async with self.http.request(method, url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            return r.status, await r.json()

    async def attach(self, d: Daemon, imsi: str, session: str = "gw-1") -> rp.Packet:
        self.ident = (self.ident + 1) % 256
        datagram, _ = access_request(msisdn=LINE.msisdn, imsi=imsi, identifier=self.ident,
                                     extra=rp.attr(rp.ACCT_SESSION_ID, session.encode()))
        raw = await exchange(d.auth_port, datagram)
        assert raw is not None
        return rp.decode(raw)

    async def account(self, d: Daemon, klass: bytes, status: int, octets: int, session: str = "gw-1") -> None:
        self.ident = (self.ident + 1) % 256
        req, _ = accounting_request(session, status, octets, 0, identifier=self.ident, msisdn=LINE.msisdn,
                                    klass=klass)
        assert await exchange(d.acct_port, req) is not None


def reply_message(pkt: rp.Packet) -> bytes | None:
    assert pkt.code == rp.ACCESS_REJECT
    return pkt.get(rp.REPLY_MESSAGE)


def granted(pkt: rp.Packet) -> int:
    assert pkt.code == rp.ACCESS_ACCEPT
    raw = pkt.vsa(rp.VENDOR_QUOTAD, 1)
    assert raw is not None
    return int.from_bytes(raw, "big")


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[Pair]:
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", port))
    base = daemon_config(redis_url, coa_port=port)
    config = replace(base, api=ApiSettings(tokens=(TokenSettings(token=Secret(TOKEN), role="operator"),)))
    try:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(running_daemon(config))
            b = await stack.enter_async_context(running_daemon(config))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            assert a.store is not None and a.store.client is not (b.store and b.store.client)
            await a.store.provisioning.create_contract("light", "light_start", dt.date(2026, 10, 1), T0)
            await a.store.provisioning.add_line("light", LINE.msisdn, OLD_ICCID, OLD_IMSI, "nano", False, T0)
            yield Pair(a, b, gateway, http)
    finally:
        transport.close()


async def test_r32_activation_drops_old_card_session_and_refuses_it_in_every_process(pair: Pair) -> None:
    """R-32: while the new card is pending the old one works and the new one is refused; on
    activation the old card's session gets a Disconnect-Request, the old IMSI is refused at once
    by both daemons, saying why (B still has it cached, A looks it up afresh), and the new IMSI
    attaches with the line's held data and coupon switch (R-13, R-21)."""
    a, b, gateway = pair.a, pair.b, pair.gateway
    accept = await pair.attach(a, OLD_IMSI)
    assert granted(accept) == 10 * MB
    klass = accept.get(rp.CLASS)
    assert klass is not None
    await pair.account(a, klass, 1, 0)
    await pair.account(a, klass, 3, 3 * MB)
    status, line = await pair.api("PUT", f"/v1/lines/{LINE.msisdn}/coupon", {"on": False})
    assert (status, line["held"]) == (200, 7 * MB)
    assert (await gateway.next()).get(rp.FILTER_ID) == b"low"

    body = {"iccid": NEW_ICCID, "imsi": NEW_IMSI, "card_type": "micro", "reason": "type-change"}
    assert (await pair.api("POST", f"/v1/lines/{LINE.msisdn}/cards", body))[0] == 201
    assert reply_message(await pair.attach(b, NEW_IMSI)) == b"SIM card is not active yet"
    assert (await pair.attach(b, OLD_IMSI)).code == rp.ACCESS_ACCEPT  # the old card works until then
    assert b.store is not None and k.imsi_index(OLD_IMSI) in b.store.index.cache  # B has it cached

    status, card = await pair.api("POST", f"/v1/lines/{LINE.msisdn}/cards/{NEW_ICCID}/activate")
    assert (status, card["replaced"]["imsi"]) == (200, OLD_IMSI)
    dm = await gateway.next()
    assert dm.code == rp.DISCONNECT_REQUEST
    assert (dm.get(rp.ACCT_SESSION_ID), dm.get(rp.CALLING_STATION_ID)) == (b"gw-1", LINE.msisdn.encode())
    assert dm.get(rp.FRAMED_IP_ADDRESS) is not None and dm.get_int(rp.EVENT_TIMESTAMP) == int(T0)

    assert reply_message(await pair.attach(a, OLD_IMSI, "gw-2")) == b"SIM card has been replaced"
    assert reply_message(await pair.attach(b, OLD_IMSI, "gw-2")) == b"SIM card has been replaced"
    for d in (a, b):
        new = await pair.attach(d, NEW_IMSI, "gw-3")
        assert granted(new) == 7 * MB  # no new slice (switch OFF), the held data carried over
        assert new.get(rp.FILTER_ID) == b"low"  # the switch carried over
    await asyncio.sleep(0.1)
    assert [p.code for p in gateway.received] == [rp.COA_REQUEST, rp.DISCONNECT_REQUEST]


async def test_r33_lost_card_disconnected_at_once_line_suspended_until_new_card(pair: Pair) -> None:
    """R-33: reporting the card lost drops its session and suspends the line (old and new card
    refused); activating the replacement resumes the line on the new card only, with its held
    data; the old card stays unusable (R-3)."""
    a, b, gateway = pair.a, pair.b, pair.gateway
    accept = await pair.attach(b, OLD_IMSI)
    klass = accept.get(rp.CLASS)
    assert klass is not None
    await pair.account(b, klass, 1, 0)
    await pair.account(b, klass, 3, 4 * MB)

    body = {"iccid": NEW_ICCID, "imsi": NEW_IMSI, "card_type": "nano", "reason": "lost"}
    status, card = await pair.api("POST", f"/v1/lines/{LINE.msisdn}/cards", body)
    assert (status, card["line"]["status"]) == (201, "suspended")
    dm = await gateway.next()
    assert (dm.code, dm.get(rp.ACCT_SESSION_ID)) == (rp.DISCONNECT_REQUEST, b"gw-1")
    await pair.account(b, klass, 2, 5 * MB)  # the gateway's Stop after the Disconnect
    for d, imsi in ((a, OLD_IMSI), (b, OLD_IMSI), (b, NEW_IMSI)):
        assert reply_message(await pair.attach(d, imsi, "gw-2")) == b"Line is suspended"

    status, card = await pair.api("POST", f"/v1/lines/{LINE.msisdn}/cards/{NEW_ICCID}/activate")
    assert (status, card["line"]["status"], card["line"]["held"]) == (200, "active", 5 * MB)
    assert reply_message(await pair.attach(b, OLD_IMSI, "gw-3")) == b"SIM card has been replaced"
    assert reply_message(await pair.attach(a, OLD_IMSI, "gw-3")) == b"SIM card has been replaced"
    new = await pair.attach(a, NEW_IMSI, "gw-4")
    # the 5 MB held carried over; holding less than a slice, the new card draws one.
    assert (granted(new), new.get(rp.FILTER_ID)) == (15 * MB, b"high-lte")
    await asyncio.sleep(0.1)
    assert [p.code for p in gateway.received] == [rp.DISCONNECT_REQUEST], "no live session left to drop"


async def test_r32_card_hook_drops_only_the_old_cards_sessions(pair: Pair) -> None:
    """R-32: a session the new card opened right after activation is not dropped with the old
    card's: the Disconnect-Request names only the old card's session."""
    a, gateway = pair.a, pair.gateway
    assert a.store is not None and a.sessions is not None
    assert (await pair.attach(a, OLD_IMSI, "gw-old")).code == rp.ACCESS_ACCEPT
    await a.store.provisioning.replace_card(LINE, NEW_ICCID, NEW_IMSI)
    assert (await pair.attach(a, NEW_IMSI, "gw-new")).code == rp.ACCESS_ACCEPT
    assert {s.acct_session_id for s in await a.store.live_sessions(LINE)} == {"gw-old", "gw-new"}
    await a.sessions.on_line_change(LINE, "card")
    dm = await gateway.next()
    assert (dm.code, dm.get(rp.ACCT_SESSION_ID)) == (rp.DISCONNECT_REQUEST, b"gw-old")
    await asyncio.sleep(0.2)
    assert len(gateway.received) == 1
