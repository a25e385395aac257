"""What a session is, tried as a gateway would (pyrad over real UDP, a real daemon and Redis): a new
attach is a new session, the gateway is part of a session's identity, a gateway restart ends its
sessions, an address stays with the session that uses it, usage is dated by the event."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.publicsafety import billing
from quotad.publicsafety.settings import PublicSafetySettings
from quotad.publicsafety.store import PublicSafetyStore
from quotad.quota import keys as k
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import T0, daemon_config, running_daemon
from tests.integration.pyrad_gateway import PyradGateway
from tests.integration.test_publicsafety_radius import D_IMSI, D_LINE, provision, ps_config

MB, GB = 1_000_000, 1_000_000_000
START, STOP, INTERIM, ON, OFF = 1, 2, 3, 7, 8
LINE = LineRef("light", "819000000011")
IMSI = "440100000000011"
DAY = "20261110"  # T0's Japan day


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(daemon_config(redis_url)) as d:
        assert d.store is not None
        await d.store.provisioning.create_contract("light", "light_start", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("light", LINE.msisdn, "8981100000000000110", IMSI, "nano", False, T0)
        yield d


def gateway(d: Daemon, nas_ip: str = "10.0.0.1") -> PyradGateway:
    return PyradGateway(d.auth_port, d.acct_port, nas_ip=nas_ip)


async def counted(d: Daemon, day: str = DAY) -> int:
    assert d.store is not None
    (u,) = await d.store.views.line_usage(LINE, [day])
    return u.high + u.low


async def test_a_new_attach_without_acct_session_id_is_a_new_session(daemon: Daemon) -> None:
    """Sessions A (50 MB, Stop) and B (30 MB, no Stop: the gateway restarts, Accounting-On), then C
    (20 MB): 100 MB counted. Each attach gets a Class of its own (the derived id was the same at
    every attach, so C merged into B and its first 30 MB counted nothing)."""
    gw = gateway(daemon)
    classes = []
    for octets, stop in ((50 * MB, True), (30 * MB, False), (20 * MB, False)):
        accept = await gw.attach(LINE.msisdn, IMSI)
        assert accept.code == rp.ACCESS_ACCEPT and accept.klass is not None
        classes.append(accept.klass)
        await gw.account(START, LINE.msisdn, klass=accept.klass)
        await gw.account(INTERIM, LINE.msisdn, klass=accept.klass, octets=octets)
        if stop:
            await gw.account(STOP, LINE.msisdn, klass=accept.klass, octets=octets)
        else:
            await gw.account(ON, LINE.msisdn)
    assert len(set(classes)) == 3
    assert await counted(daemon) == 100 * MB


async def test_two_gateways_with_the_same_acct_session_id_are_two_sessions(daemon: Daemon) -> None:
    """Gateways number their sessions independently: A's and B's "00000001" are two sessions, with
    two addresses, both counted and both reachable by CoA."""
    assert daemon.store is not None
    a, b = gateway(daemon, "10.0.0.1"), gateway(daemon, "10.0.0.2")
    ga = await a.attach(LINE.msisdn, IMSI, acct_session_id="00000001")
    gb = await b.attach(LINE.msisdn, IMSI, acct_session_id="00000001")
    assert ga.code == gb.code == rp.ACCESS_ACCEPT
    assert ga.framed_ip != gb.framed_ip
    await a.account(START, LINE.msisdn, "00000001", klass=ga.klass)
    await a.account(INTERIM, LINE.msisdn, "00000001", 50 * MB, klass=ga.klass)
    await b.account(START, LINE.msisdn, "00000001", klass=gb.klass)
    await b.account(INTERIM, LINE.msisdn, "00000001", 30 * MB, klass=gb.klass)
    assert await counted(daemon) == 80 * MB
    sessions = await daemon.store.live_sessions(LINE)
    assert sorted((s.nas_ip, s.acct_session_id, s.framed_ip) for s in sessions) == [
        ("10.0.0.1", "00000001", ga.framed_ip), ("10.0.0.2", "00000001", gb.framed_ip)]


async def test_the_same_without_class(daemon: Daemon) -> None:
    """A gateway that does not echo Class: its sessions are found by its own Acct-Session-Id, still
    apart from another gateway's same id."""
    a, b = gateway(daemon, "10.0.0.1"), gateway(daemon, "10.0.0.2")
    for gw, octets in ((a, 50 * MB), (b, 30 * MB)):
        await gw.attach(LINE.msisdn, IMSI, acct_session_id="00000001")
        await gw.account(START, LINE.msisdn, "00000001", imsi=IMSI)
        await gw.account(INTERIM, LINE.msisdn, "00000001", octets, imsi=IMSI)
    assert await counted(daemon) == 80 * MB


async def test_a_gateway_without_class_or_id_at_attach_leaves_no_phantom(daemon: Daemon) -> None:
    """The attach named no session and the gateway does not echo Class: accounting names the session
    by its own Acct-Session-Id and reports the address it was given. That session takes over the
    attach's address lease (renewed by its reports from then on) and the attach's placeholder is
    gone, so CoA finds one session, the real one."""
    assert daemon.store is not None
    gw = gateway(daemon)
    accept = await gw.attach(LINE.msisdn, IMSI)
    assert accept.framed_ip is not None
    await gw.account(START, LINE.msisdn, "S-1", imsi=IMSI, framed_ip=accept.framed_ip)
    sessions = await daemon.store.live_sessions(LINE)
    assert [(s.acct_session_id, s.framed_ip) for s in sessions] == [("S-1", accept.framed_ip)]
    pool = k.IpPoolKeys("100.64.0.0/16").all()
    owners = {o.decode() for o in await daemon.store.client.hkeys(pool[2])}
    assert owners == {k.session_owner("light", LINE.msisdn, sessions[0].session_id)}
    await gw.account(STOP, LINE.msisdn, "S-1", 5 * MB, imsi=IMSI, framed_ip=accept.framed_ip)
    assert await daemon.store.client.hlen(pool[2]) == 0
    assert await counted(daemon) == 5 * MB


@pytest.mark.parametrize("status", [ON, OFF])
async def test_accounting_on_or_off_ends_the_gateways_sessions(daemon: Daemon, status: int) -> None:
    assert daemon.store is not None
    a, b = gateway(daemon, "10.0.0.1"), gateway(daemon, "10.0.0.2")
    ga = await a.attach(LINE.msisdn, IMSI, acct_session_id="A-1")
    gb = await b.attach(LINE.msisdn, IMSI, acct_session_id="B-1")
    await a.account(START, LINE.msisdn, "A-1", klass=ga.klass)
    await a.account(INTERIM, LINE.msisdn, "A-1", 10 * MB, klass=ga.klass)
    await b.account(START, LINE.msisdn, "B-1", klass=gb.klass)
    await a.account(status, LINE.msisdn)
    await a.account(status, LINE.msisdn)  # said twice: once is enough
    assert [s.acct_session_id for s in await daemon.store.live_sessions(LINE)] == ["B-1"]
    assert await counted(daemon) == 10 * MB


async def test_usage_is_booked_on_the_day_of_the_event(daemon: Daemon) -> None:
    """An Interim buffered two days (Acct-Delay-Time) and one with Event-Timestamp go to their days."""
    gw = gateway(daemon)
    assert isinstance(daemon.clock, SettableClock)
    accept = await gw.attach(LINE.msisdn, IMSI, acct_session_id="S-1")
    await gw.account(START, LINE.msisdn, "S-1", klass=accept.klass)
    await gw.account(INTERIM, LINE.msisdn, "S-1", 10 * MB, klass=accept.klass)
    daemon.clock.advance(2 * 86400)
    await gw.account(INTERIM, LINE.msisdn, "S-1", 30 * MB, klass=accept.klass, delay=2 * 86400 - 600)
    await gw.account(INTERIM, LINE.msisdn, "S-1", 45 * MB, klass=accept.klass,
                     event_timestamp=int(T0 + 86400))
    assert (await counted(daemon, "20261110"), await counted(daemon, "20261111"),
            await counted(daemon, "20261112")) == (30 * MB, 15 * MB, 0)


async def test_public_safety_a_second_session_after_a_stop_is_billed(redis_url: str) -> None:
    """Two sessions of one public-safety line in a month, no Acct-Session-Id at attach: both are
    counted (2.0 + 1.5 GB on a 3 GB group: 1 GB of overage, 300 yen)."""
    async with running_daemon(ps_config(redis_url)) as d:
        await provision(d)
        gw = PyradGateway(d.auth_port, d.acct_port, nas_ip="10.0.0.1", apn="ps.example.jp", user="ps@org",
                          password="ps-pass")
        assert isinstance(d.clock, SettableClock)
        for asid, octets in (("ps-a", 2 * GB), ("ps-b", 1_500_000_000)):
            accept = await gw.attach(D_LINE, D_IMSI)
            assert accept.code == rp.ACCESS_ACCEPT
            await gw.account(START, D_LINE, asid, klass=accept.klass)
            d.clock.advance(3600)
            await gw.account(STOP, D_LINE, asid, octets, klass=accept.klass)
        store = PublicSafetyStore(d.redis)
        usage = await store.month_usage("PS1", "2026-11")
        assert usage == {"g1": 3_500_000_000}
        st = billing.statement(await store.load("PS1"), "2026-11", usage, PublicSafetySettings())
        assert [(i.code, i.amount_yen) for i in st.items if i.code == "overage"] == [("overage", 300)]


async def test_a_reauthorization_naming_its_session_by_class_keeps_it(daemon: Daemon) -> None:
    """Authorize-Only with the Class of a live session (no Acct-Session-Id): the same session, its
    address and counters kept, so the next report counts only what is new."""
    assert daemon.store is not None
    gw = gateway(daemon)
    first = await gw.attach(LINE.msisdn, IMSI)
    await gw.account(START, LINE.msisdn, klass=first.klass)
    await gw.account(INTERIM, LINE.msisdn, klass=first.klass, octets=12 * MB)
    again = await gw.attach(LINE.msisdn, IMSI, klass=first.klass, service_type="Authorize-Only")
    assert (again.code, again.klass, again.framed_ip) == (rp.ACCESS_ACCEPT, first.klass, first.framed_ip)
    await gw.account(INTERIM, LINE.msisdn, klass=again.klass, octets=15 * MB)
    assert await counted(daemon) == 15 * MB
    assert len(await daemon.store.live_sessions(LINE)) == 1


async def test_public_safety_usage_goes_to_the_month_of_the_event(redis_url: str) -> None:
    """A November report delivered on 1 December (Acct-Delay-Time) is billed in November."""
    dec1 = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp()
    async with running_daemon(ps_config(redis_url)) as d:
        await provision(d)
        gw = PyradGateway(d.auth_port, d.acct_port, nas_ip="10.0.0.1", apn="ps.example.jp", user="ps@org",
                          password="ps-pass")
        accept = await gw.attach(D_LINE, D_IMSI, acct_session_id="ps-1")
        await gw.account(START, D_LINE, "ps-1", klass=accept.klass)
        assert isinstance(d.clock, SettableClock)
        d.clock.set(dec1)
        await gw.account(INTERIM, D_LINE, "ps-1", GB, klass=accept.klass, delay=3600)  # 23:30 on 30 Nov
        await gw.account(INTERIM, D_LINE, "ps-1", GB + 200 * MB, klass=accept.klass)
        store = PublicSafetyStore(d.redis)
        assert await store.month_usage("PS1", "2026-11") == {"g1": GB}
        assert await store.month_usage("PS1", "2026-12") == {"g1": 200 * MB}


async def test_authorize_only_without_a_password_re_authorizes_a_live_session(daemon: Daemon) -> None:
    """RFC 5176 §3.1: a gateway asks again for a live session without the password, naming it by
    Acct-Session-Id, Class or a State holding quotad's Class value; Message-Authenticator still
    authenticates it. Anything else without a password is refused."""
    a, b = gateway(daemon, "10.0.0.1"), gateway(daemon, "10.0.0.2")
    first = await a.attach(LINE.msisdn, IMSI, acct_session_id="S-1")
    await a.account(START, LINE.msisdn, "S-1", klass=first.klass)
    for named in ({"acct_session_id": "S-1"}, {"klass": first.klass}, {"state": first.klass}):
        again = await a.attach(LINE.msisdn, IMSI, service_type="Authorize-Only", password=False, **named)
        assert (again.code, again.klass, again.framed_ip) == (rp.ACCESS_ACCEPT, first.klass, first.framed_ip)
    refused = [
        await a.attach(LINE.msisdn, IMSI, acct_session_id="S-2", service_type="Authorize-Only", password=False),
        await a.attach(LINE.msisdn, IMSI, service_type="Authorize-Only", password=False),  # names nothing
        await b.attach(LINE.msisdn, IMSI, acct_session_id="S-1", service_type="Authorize-Only", password=False),
        await a.attach(LINE.msisdn, IMSI, acct_session_id="S-1", password=False),  # no Authorize-Only
    ]
    assert [r.code for r in refused] == [rp.ACCESS_REJECT] * 4
    await a.account(STOP, LINE.msisdn, "S-1", 1 * MB, klass=first.klass)
    ended = await a.attach(LINE.msisdn, IMSI, acct_session_id="S-1", service_type="Authorize-Only", password=False)
    assert ended.code == rp.ACCESS_REJECT
    with_password = await a.attach(LINE.msisdn, IMSI, acct_session_id="S-1", service_type="Authorize-Only")
    assert with_password.code == rp.ACCESS_ACCEPT  # with credentials, as before: a new session under S-1


async def test_an_absurd_report_over_the_wire_is_acknowledged_counted_by_reason_and_changes_nothing(
    daemon: Daemon,
) -> None:
    """Acct-Input-Gigawords = 2^31 (9.2e18 octets): answered (a resend would fare the same), not
    counted, counted in quotad_accounting_not_counted_total{reason="implausible"}; the session's
    next sane report counts from where it was."""
    from quotad import metrics

    def implausible() -> float:
        return metrics.REGISTRY.get_sample_value("quotad_accounting_not_counted_total",
                                                 {"reason": "implausible"}) or 0.0

    gw = gateway(daemon)
    accept = await gw.attach(LINE.msisdn, IMSI, acct_session_id="S-1")
    await gw.account(START, LINE.msisdn, "S-1", klass=accept.klass)
    await gw.account(INTERIM, LINE.msisdn, "S-1", 5 * MB, klass=accept.klass)
    before = implausible()
    await gw.account(INTERIM, LINE.msisdn, "S-1", (1 << 31) << 32, klass=accept.klass)
    assert implausible() == before + 1
    assert await counted(daemon) == 5 * MB
    await gw.account(INTERIM, LINE.msisdn, "S-1", 8 * MB, klass=accept.klass)
    assert await counted(daemon) == 8 * MB
