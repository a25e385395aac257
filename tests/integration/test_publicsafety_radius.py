"""Public-safety lines end to end over real UDP against a real daemon and a real Redis
(R-62 fixed addresses, R-63 capacity and heavy use, R-61 termination, R-65 billing from usage)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from quotad import config as cfg
from quotad import metrics
from quotad.aaa import classattr
from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.config import Secret
from quotad.publicsafety import billing, changes
from quotad.publicsafety.model import LineSpec, PairApplication
from quotad.publicsafety.settings import PublicSafetySettings
from quotad.publicsafety.store import PublicSafetyStore, new_claims
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

PS_APN = b"ps.example.jp"
GB = 1_000_000_000
JST = dt.timezone(dt.timedelta(hours=9))
D_LINE, K_LINE = "817000000001", "817000000002"
D_IMSI = "440100000000901"


def ps_config(redis_url: str) -> cfg.Config:
    base = daemon_config(redis_url)
    apn = cfg.ApnSettings(name="ps.example.jp", user="ps@org", password=Secret("ps-pass"),
                          home_networks=("44010", "44050", "44051"))
    ps = PublicSafetySettings(apns=("ps.example.jp",), heavy_use_bytes=5 * GB, heavy_use_days=3)
    return replace(base, apns=(*base.apns, apn), publicsafety=ps)


def spec(msisdn: str, imsi: str, n: int) -> LineSpec:
    return LineSpec(msisdn=msisdn, iccid=f"898100000000009{n:02d}", imsi=imsi, sim_type="multi_ff",
                    ipv4=f"203.0.113.{n}", ipv6_prefix=f"2001:db8:0:{n}::/64")


async def provision(d: Daemon) -> None:
    """PS1 (item mobile): group g1, data 3 GB, pair p1 (D_LINE, K_LINE); consumer contract fam with one line."""
    store = PublicSafetyStore(d.redis)
    today = store.today(T0)
    parent = changes.new_parent("PS1", "mobile", 0, today)
    parent = changes.add_group(parent, "g1", "data", "3GB", today)
    await store.create(parent)
    app = PairApplication("p1", "g1", spec(D_LINE, D_IMSI, 1), spec(K_LINE, "440500000000902", 2))
    await store.change("PS1", lambda p: changes.add_pair(p, app, today), new_claims)
    assert d.store is not None
    await d.store.provisioning.create_contract("fam", "family_share", dt.date(2026, 11, 1), T0)
    await d.store.provisioning.add_line("fam", "819000000001", "8981100000000000011", "440100000000001", "nano",
                                        False, T0)


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(ps_config(redis_url)) as d:
        await provision(d)
        yield d


def ps_request(extra: bytes = b"", imsi: str = D_IMSI, identifier: int = 1) -> tuple[bytes, bytes]:
    return access_request(msisdn=D_LINE, apn=PS_APN, user=b"ps@org", password=b"ps-pass", imsi=imsi,
                          extra=extra, identifier=identifier)


def reply(raw: bytes | None, auth: bytes) -> rp.Packet:
    assert raw is not None, "no reply"
    pkt = rp.decode(raw)
    assert rp.verify_response_authenticator(pkt, auth, SECRET)
    return pkt


def rejects(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("quotad_radius_rejects_total", {"reason": reason}) or 0.0


async def account(d: Daemon, klass: bytes, status: int, octets: int, identifier: int) -> None:
    datagram, auth = accounting_request("ps-sess-1", status, octets_in=octets % 2**32, gigawords_in=octets >> 32,
                                        msisdn=D_LINE, klass=klass, identifier=identifier)
    assert reply(await exchange(d.acct_port, datagram), auth).code == rp.ACCOUNTING_RESPONSE


async def test_r62_accept_carries_the_fixed_ipv4_and_ipv6_prefix(daemon: Daemon) -> None:
    datagram, auth = ps_request()
    pkt = reply(await exchange(daemon.auth_port, datagram), auth)
    assert pkt.code == rp.ACCESS_ACCEPT
    assert pkt.get(rp.FRAMED_IP_ADDRESS) == bytes([203, 0, 113, 1])
    assert pkt.get(rp.FRAMED_IPV6_PREFIX) == bytes([0, 64, 0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1])
    assert pkt.get(rp.FILTER_ID) == b"high-lte"
    assert pkt.vsa(rp.VENDOR_QUOTAD, 1) is None  # no slice: capacity never slows the line
    info = classattr.decode(pkt.get(rp.CLASS))
    assert info is not None and (info.contract_id, info.msisdn) == ("PS1", D_LINE)


async def test_r62_request_for_its_own_address_accepted(daemon: Daemon) -> None:
    own = rp.attr(rp.FRAMED_IP_ADDRESS, bytes([203, 0, 113, 1]))
    own6 = rp.attr(rp.FRAMED_IPV6_PREFIX, bytes([0, 64, 0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1]))
    datagram, auth = ps_request(own + own6)
    assert reply(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_ACCEPT


async def test_r62_request_for_another_ipv4_address_rejected_and_counted(daemon: Daemon) -> None:
    before = rejects("address_not_allowed")
    datagram, auth = ps_request(rp.attr(rp.FRAMED_IP_ADDRESS, bytes([203, 0, 113, 2])))  # the partner's address
    pkt = reply(await exchange(daemon.auth_port, datagram), auth)
    assert pkt.code == rp.ACCESS_REJECT
    assert pkt.get(rp.REPLY_MESSAGE) == b"Only the line's fixed address may be used"
    assert rejects("address_not_allowed") == before + 1


async def test_r62_request_for_another_ipv6_prefix_rejected(daemon: Daemon) -> None:
    before = rejects("address_not_allowed")
    other = rp.attr(rp.FRAMED_IPV6_PREFIX, bytes([0, 64, 0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 9]))
    datagram, auth = ps_request(other)
    assert reply(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_REJECT
    assert rejects("address_not_allowed") == before + 1


async def test_r1_consumer_sim_on_public_safety_apn_and_back_rejected(daemon: Daemon) -> None:
    datagram, auth = access_request(msisdn="819000000001", apn=PS_APN, user=b"ps@org", password=b"ps-pass",
                                    imsi="440100000000001")
    assert reply(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_REJECT
    datagram, auth = access_request(msisdn=D_LINE, imsi=D_IMSI, identifier=2)
    assert reply(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_REJECT


async def test_r63_past_capacity_counted_once_speed_kept_and_billed(daemon: Daemon) -> None:
    datagram, auth = ps_request()
    klass = reply(await exchange(daemon.auth_port, datagram), auth).get(rp.CLASS)
    assert klass is not None
    await account(daemon, klass, 1, 0, 10)
    await account(daemon, klass, 3, 4 * GB + 300_000_000, 11)  # 4.3 GB on a 3 GB group
    await account(daemon, klass, 3, 4 * GB + 300_000_000, 12)  # a replayed report counts once
    store = PublicSafetyStore(daemon.redis)
    assert await store.month_usage("PS1", "2026-11") == {"g1": 4 * GB + 300_000_000}
    datagram, auth = ps_request(identifier=3)
    pkt = reply(await exchange(daemon.auth_port, datagram), auth)
    assert (pkt.code, pkt.get(rp.FILTER_ID)) == (rp.ACCESS_ACCEPT, b"high-lte")  # never slowed for capacity
    parent = await store.load("PS1")
    st = billing.statement(parent, "2026-11", await store.month_usage("PS1", "2026-11"), PublicSafetySettings())
    assert (st.excess_bytes, st.overage_gb) == (1_300_000_000, 2)
    assert [(i.code, i.amount_yen) for i in st.items] == [("one_off", 3000), ("plan", 1650), ("overage", 600)]


async def test_r63_heavy_use_over_the_window_restricts_then_clears(daemon: Daemon) -> None:
    datagram, auth = ps_request()
    klass = reply(await exchange(daemon.auth_port, datagram), auth).get(rp.CLASS)
    assert klass is not None
    await account(daemon, klass, 3, 6 * GB, 20)  # past the configured 5 GB over 3 days
    datagram, auth = ps_request(identifier=4)
    assert reply(await exchange(daemon.auth_port, datagram), auth).get(rp.FILTER_ID) == b"restricted"
    assert isinstance(daemon.clock, SettableClock)
    daemon.clock.advance(3 * 86400)  # the window has moved past that day
    datagram, auth = ps_request(identifier=5)
    assert reply(await exchange(daemon.auth_port, datagram), auth).get(rp.FILTER_ID) == b"high-lte"


async def test_r61_line_past_its_termination_date_rejected(daemon: Daemon) -> None:
    store = PublicSafetyStore(daemon.redis)
    today = store.today(T0)  # 10 November 2026: the line ends 10 December, its partner 31 December
    await store.change("PS1", lambda p: changes.terminate_line(p, D_LINE, today, today))
    assert isinstance(daemon.clock, SettableClock)
    daemon.clock.set(dt.datetime(2026, 12, 10, 23, 59, tzinfo=JST).timestamp())
    datagram, auth = ps_request()
    assert reply(await exchange(daemon.auth_port, datagram), auth).code == rp.ACCESS_ACCEPT
    daemon.clock.set(dt.datetime(2026, 12, 11, 0, 0, tzinfo=JST).timestamp())
    before = rejects("terminated")
    datagram, auth = ps_request(identifier=2)
    pkt = reply(await exchange(daemon.auth_port, datagram), auth)
    assert (pkt.code, pkt.get(rp.REPLY_MESSAGE)) == (rp.ACCESS_REJECT, b"Line is terminated")
    assert rejects("terminated") == before + 1


@pytest.mark.skipif(shutil.which("radclient") is None, reason="radclient not installed")
async def test_r62_radclient_reads_the_fixed_addresses(daemon: Daemon) -> None:
    """FreeRADIUS's radclient (an independent peer) decodes Framed-IP-Address and Framed-IPv6-Prefix."""
    attrs = (f"User-Name=ps@org,User-Password=ps-pass,Called-Station-Id=ps.example.jp,Calling-Station-Id={D_LINE},"
             "Message-Authenticator=0x00")
    proc = await asyncio.create_subprocess_exec(
        "radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{daemon.auth_port}", "auth", "testing123",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(attrs.encode())
    text = out.decode()
    assert "Access-Accept" in text, text + err.decode()
    assert "Framed-IP-Address = 203.0.113.1" in text
    assert "Framed-IPv6-Prefix = 2001:db8:0:1::/64" in text


def ps_accounting(session_id: str, status: int, octets: int, identifier: int) -> tuple[bytes, bytes]:
    """An Accounting-Request naming the APN (Called-Station-Id) and no Class: found by IMSI."""
    attrs = (rp.attr_int(rp.ACCT_STATUS_TYPE, status) + rp.attr(rp.ACCT_SESSION_ID, session_id.encode())
             + rp.attr(rp.CALLED_STATION_ID, PS_APN) + rp.attr(rp.CALLING_STATION_ID, D_LINE.encode())
             + rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI, D_IMSI.encode())
             + rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1])) + rp.attr_int(rp.ACCT_INPUT_OCTETS, octets % 2**32)
             + rp.attr_int(rp.ACCT_INPUT_GIGAWORDS, octets >> 32))
    return rp.encode_request(rp.ACCOUNTING_REQUEST, identifier, SECRET, attrs, message_authenticator=False)


@pytest.fixture
async def with_gateway(redis_url: str) -> AsyncIterator[tuple[Daemon, Gateway]]:
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: gateway, local_addr=("127.0.0.1", port))
    config = ps_config(redis_url)
    config = replace(config, clients=tuple(replace(c, coa_port=port) for c in config.clients))
    try:
        async with running_daemon(config) as d:
            await provision(d)
            yield d, gateway
    finally:
        transport.close()


async def test_r63_heavy_use_crossed_in_accounting_pushed_by_coa(with_gateway: tuple[Daemon, Gateway]) -> None:
    """R-63 / R-24: usage by APN-named accounting passes the heavy-use threshold; the live session
    is moved to the restricted profile by CoA, addressed to its fixed address. A public-safety line
    holds no slice: the CoA carries the speed alone, no Quotad-Granted-Octets (aaa.speed's
    ``with_grant=False``; a consumer line's grant cannot be read for it)."""
    d, gateway = with_gateway
    datagram, auth = ps_request(rp.attr(rp.ACCT_SESSION_ID, b"gw-ps-1"))
    assert reply(await exchange(d.auth_port, datagram), auth).code == rp.ACCESS_ACCEPT
    for status, octets, ident in ((1, 0, 30), (3, 4 * GB, 31)):
        datagram, auth = ps_accounting("gw-ps-1", status, octets, ident)
        assert reply(await exchange(d.acct_port, datagram), auth).code == rp.ACCOUNTING_RESPONSE
    assert gateway.received == []
    datagram, auth = ps_accounting("gw-ps-1", 3, 4 * GB + 1_500_000_000, 32)  # 5.5 GB > 5 GB over the window
    assert reply(await exchange(d.acct_port, datagram), auth).code == rp.ACCOUNTING_RESPONSE
    coa = await gateway.next()
    assert coa.code == rp.COA_REQUEST
    assert coa.get(rp.FILTER_ID) == b"restricted"
    assert coa.get(rp.ACCT_SESSION_ID) == b"gw-ps-1"
    assert coa.get(rp.FRAMED_IP_ADDRESS) == bytes([203, 0, 113, 1])
    assert coa.vsa(rp.VENDOR_QUOTAD, 1) is None
    assert await PublicSafetyStore(d.redis).month_usage("PS1", "2026-11") == {"g1": 5_500_000_000}


async def test_r65_whole_flow_api_radius_statement(redis_url: str) -> None:
    """Provision through the HTTP API, attach and account over UDP, read the statement over HTTP:
    g1 (data 1 GB) used 1.2 GB, g2 (voice 3 GB) 3.9 GB → 0.2 + 0.9 = 1.1 GB → 2 GB → 600 yen."""
    token = "operator-token-0123456789abcdef"
    config = ps_config(redis_url)
    config = replace(config, api=cfg.ApiSettings(tokens=(cfg.TokenSettings(token=Secret(token), role="operator"),)))
    async with running_daemon(config) as d, aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{d.http_port}", headers={"Authorization": f"Bearer {token}"}) as http:
        base = "/v1/public-safety/contracts"
        calls: list[tuple[str, dict[str, object]]] = [
            (base, {"id": "ORG", "item": "mobile", "packs": 0}),
            (f"{base}/ORG/groups", {"id": "g1", "kind": "data", "plan": "1GB"}),
            (f"{base}/ORG/groups", {"id": "g2", "kind": "voice", "plan": "3GB"}),
        ]
        for n, group in ((1, "g1"), (3, "g2")):
            pair: dict[str, object] = {"id": f"p{n}", "group_id": group, "call_flat": False,
                                       "disaster_priority": "none"}
            for prefix, m in (("d", n), ("k", n + 1)):
                pair.update({f"{prefix}_msisdn": f"81700000010{m}", f"{prefix}_iccid": f"898100000000010{m}",
                             f"{prefix}_imsi": f"44010000000010{m}", f"{prefix}_sim_type": "esim",
                             f"{prefix}_ipv4": f"198.51.100.{m}", f"{prefix}_ipv6_prefix": f"2001:db8:{m}::/48"})
            calls.append((f"{base}/ORG/pairs", pair))
        for path, body in calls:
            async with http.post(path, json=body) as resp:
                assert resp.status == 201, await resp.text()
        for n, used, ident in ((1, 1_200_000_000, 50), (3, 3_900_000_000, 60)):
            msisdn = f"81700000010{n}"
            datagram, auth = access_request(msisdn=msisdn, apn=PS_APN, user=b"ps@org", password=b"ps-pass",
                                            identifier=ident)
            accept = reply(await exchange(d.auth_port, datagram), auth)
            assert accept.code == rp.ACCESS_ACCEPT
            klass = accept.get(rp.CLASS)
            datagram, auth = accounting_request(f"s{n}", 2, octets_in=used, msisdn=msisdn, klass=klass,
                                                identifier=ident + 1)
            assert reply(await exchange(d.acct_port, datagram), auth).code == rp.ACCOUNTING_RESPONSE
        async with http.get("/v1/contracts/ORG/statements/2026-11") as resp:
            assert resp.status == 200
            st = await resp.json()
    assert [(i["code"], i["quantity"], i["amount_yen"]) for i in st["items"]] == [
        ("one_off", 4, 6000), ("plan", 1, 1200), ("plan", 1, 1700), ("overage", 2, 600)]
    assert (st["excess_bytes"], st["total_yen"]) == (1_100_000_000, 9500)
