"""The simulated gateway against a real daemon (real Redis, real UDP): slices used up and asked
for again (R-12), the pool running dry moves the session to `low` by CoA without a drop (R-15,
R-24), suspending drops it by Disconnect (R-30), and the RFC 5176 listener's ACK/NAK rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.quota.calendar import day_key
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from quotad.radius.coa import DynamicAuthClient, SessionTarget
from simulators.gateway import Gateway, GatewaySettings, SessionPlan
from simulators.handset import Handset, State
from simulators.traffic import Activity, TrafficModel
from simulators.wire import Nas
from tests.conftest import free_port
from tests.integration.daemon_fixture import SECRET, T0, daemon_config, running_daemon

MB = 1_000_000
LINE = LineRef("mini", "819000000021")
# One activity that wants more than any profile gives: the rate and the slice decide everything.
GREEDY = TrafficModel("greedy", (Activity("bulk", 500_000_000, 0, 1.0, 1e9),))


@dataclass
class Rig:
    daemon: Daemon
    gateway: Gateway
    clock: SettableClock

    async def run(self, seconds: int) -> None:
        """Advance the clock one second at a time, the gateway moving traffic each second."""
        for _ in range(seconds):
            self.clock.advance(1.0)
            await self.gateway.tick(self.clock.now(), 1.0)
            assert self.daemon.sessions is not None
            await self.daemon.sessions.drain(2.0)


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    coa_port = free_port(socket.SOCK_DGRAM)
    async with running_daemon(daemon_config(redis_url, coa_port=coa_port)) as d:
        assert d.store is not None and isinstance(d.clock, SettableClock)
        await d.store.provisioning.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("mini", LINE.msisdn, "8981100000000000219", "440100000000021", "nano",
                                            False, T0)
        await d.store.provisioning.charge("mini", 1, "test", T0)
        settings = GatewaySettings(
            auth_port=d.auth_port, acct_port=d.acct_port, coa_port=coa_port, nas=Nas(secret=SECRET)
        )
        gw = Gateway(settings, d.clock.now)
        await gw.start()
        gw.add(Handset(LINE.msisdn, "440100000000021", "3534900000000021"), GREEDY, seed=1,
               plan=SessionPlan(None, gap_seconds=-1))
        try:
            yield Rig(d, gw, d.clock)
        finally:
            await gw.close()


async def test_slices_used_up_then_pool_dry_coa_to_low_without_drop(rig: Rig) -> None:
    """R-12: each 10 MB slice is used up at the LTE rate and the next one asked for; R-15/R-24: when
    slice and pool are empty quotad CoAs the session to `low`, the gateway ACKs and the session
    goes on at 200 kbps (the rate caps the bytes)."""
    await rig.run(1)
    h = rig.gateway.devices[0].handset
    assert h.state is State.ACTIVE and h.grant is not None
    session = h.session_id
    assert (h.grant.profile, h.grant.down_bps, h.grant.granted) == ("high-lte", 112_500_000, 10 * MB)
    # 112.5 Mbit/s moves 14.06 MB a second: a 10 MB slice is gone every second.
    await rig.run(12)
    kinds = [e.kind for e in rig.gateway.events]
    assert kinds.count("accept") == 1 and "stop" not in kinds
    assert kinds.count("coa") == 1, rig.gateway.events
    assert rig.gateway.dynauth_counts == {"coa-ack": 1}
    assert (h.state, h.session_id, h.grant.profile, h.grant.down_bps, h.grant.metered) == (
        State.ACTIVE, session, "low", 200_000, False)
    # 100 MB pool + nothing held: the high-speed bytes are exactly the coupon
    assert rig.daemon.store is not None
    view = await rig.daemon.store.views.contract_view("mini", rig.clock.now())
    assert (view.pool, view.lines[0].held, view.lines[0].speed, view.lines[0].sessions) == (0, 0, "low", 1)
    before = h.octets_out
    await rig.run(10)
    assert h.octets_out - before == 10 * 200_000 // 8  # 10 s at 200 kbit/s


async def test_disconnect_ends_the_session_and_sends_stop(rig: Rig) -> None:
    """R-30: suspend → Disconnect-Request; the gateway ACKs, ends the session and sends the Stop."""
    await rig.run(2)
    d, gw = rig.daemon, rig.gateway
    assert d.store is not None and d.sessions is not None
    await d.store.provisioning.set_status(LINE, "suspended", rig.clock.now())
    await d.sessions.on_line_change(LINE, "suspend")
    await d.sessions.drain(2.0)
    await gw.settle()
    h = gw.devices[0].handset
    assert gw.dynauth_counts == {"disconnect-ack": 1}
    assert h.state is State.DETACHED and h.terminate_cause == 6
    assert [e.kind for e in gw.events][-2:] == ["disconnect", "stop"]
    view = await d.store.views.contract_view("mini", rig.clock.now())
    assert view.lines[0].sessions == 0


async def test_unknown_session_gets_nak_503_and_bad_signature_is_discarded(rig: Rig) -> None:
    """RFC 5176: a request for a session the gateway does not hold → NAK, Error-Cause 503;
    a request signed with the wrong secret is discarded (no answer)."""
    port = rig.gateway.settings.coa_port
    client = DynamicAuthClient(lambda _: (SECRET, port), timeout=0.2, retries=0)
    wrong = DynamicAuthClient(lambda _: (b"not-the-secret", port), timeout=0.2, retries=0)
    await client.start()
    await wrong.start()
    try:
        target = SessionTarget("no-such-session", "127.0.0.1")
        coa = await client.coa(target, b"")
        dm = await client.disconnect(target)
        assert (coa.outcome, coa.error_cause) == ("nak", 503)
        assert (dm.outcome, dm.error_cause) == ("nak", 503)
        assert (await wrong.disconnect(target)).outcome == "timeout"
    finally:
        await client.close()
        await wrong.close()
    assert rig.gateway.dynauth_counts == {"coa-nak": 1, "disconnect-nak": 1, "discarded": 1}



async def test_recorded_trace_replays_the_same_usage(rig: Rig) -> None:
    """The gateway records what it sent in the replay format (attach, interims, re-authorizations,
    stop); replayed, the trace makes quotad count exactly the same octets a second time (R-16)."""
    from simulators import trace
    from simulators.replay import Target, replay

    rig.gateway.recording = []
    await rig.run(3)
    await rig.gateway.stop_all(rig.clock.now())
    events = trace.parse(trace.dumps(rig.gateway.recording))
    session = rig.gateway.devices[0].handset.session_id
    assert [e.event for e in events][:1] == ["attach"] and events[-1].event == "stop"
    assert {e.session for e in events} == {session}
    assert [e.event for e in events].count("reauth") == [e.kind for e in rig.gateway.events].count("slice")
    assert rig.daemon.store is not None
    ref = LineRef("mini", LINE.msisdn)
    before = await rig.daemon.store.views.line_usage(ref, [day_key(T0)])
    result = await replay(events, Target(auth_port=rig.daemon.auth_port, acct_port=rig.daemon.acct_port,
                                         nas=Nas(secret=SECRET)), speed=1000)
    assert set(result.outcomes()) == {"accept", "response"}
    after = await rig.daemon.store.views.line_usage(ref, [day_key(T0)])
    assert before[0].high == rig.gateway.devices[0].handset.lifetime_octets > 0
    assert after[0].high == 2 * before[0].high


async def test_retransmitted_disconnect_gets_the_same_ack_and_ends_one_session(rig: Rig) -> None:
    """RFC 5176 §2.3 / RFC 5080: quotad resends an unanswered request as the very same datagram; the
    copy gets the first answer (ACK, not NAK 503) and the session is ended once (one Stop)."""
    await rig.run(2)
    h = rig.gateway.devices[0].handset
    body = rp.attr(rp.CALLING_STATION_ID, LINE.msisdn.encode()) + rp.attr(rp.ACCT_SESSION_ID, h.session_id.encode())
    datagram, _ = rp.encode_request(rp.DISCONNECT_REQUEST, 77, SECRET, body)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # one source port, as quotad's client
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        replies = []
        for _ in range(2):
            await loop.sock_sendto(sock, datagram, ("127.0.0.1", rig.gateway.settings.coa_port))
            replies.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 2.0))
    first, second = replies
    assert first == second
    assert rp.decode(first).code == rp.DISCONNECT_ACK
    await rig.gateway.settle()
    assert rig.gateway.dynauth_counts == {"disconnect-ack": 1, "duplicate": 1}
    assert [e.kind for e in rig.gateway.events].count("stop") == 1
    assert h.state is State.DETACHED
