"""The Japan-midnight speed walk (quotad/speedtimer.py), end to end: a speed that changes at a
Japan midnight is pushed by CoA then, with no RADIUS request in between (R-24 with R-22, R-10).
Real daemons on real Redis (single and Cluster), a real UDP listener playing the gateway's RFC 5176
port; the clock is a SettableClock and the tests run the timer's step (tick) themselves, but for
one that watches the daemon run it by itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import redis.asyncio as aioredis

from quotad import metrics
from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from quotad.speedtimer import DONE_KEY, LOCK_KEY, SpeedTimer, Walk
from tests.conftest import free_port
from tests.integration.daemon_fixture import T0, Gateway, daemon_config
from tests.integration.test_speed_e2e import Counting, start_session

MB = 1_000_000
JST = dt.timezone(dt.timedelta(hours=9))
LIGHT = LineRef("light", "819000000011")
NOV_13 = dt.datetime(2026, 11, 13, tzinfo=JST).timestamp()  # T0's day (Nov 10) leaves the 3-day window
NOV_30_NOON = dt.datetime(2026, 11, 30, 12, tzinfo=JST).timestamp()
DEC_1 = dt.datetime(2026, 12, 1, tzinfo=JST).timestamp()  # December's bundle


@asynccontextmanager
async def gateway_on_free_port() -> AsyncIterator[tuple[Gateway, int]]:
    port = free_port(socket.SOCK_DGRAM)
    gateway = Gateway()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", port))
    try:
        yield gateway, port
    finally:
        transport.close()


@asynccontextmanager
async def daemon(redis_url: str, coa_port: int, now: float = T0, timer_seconds: float = 0.0,
                 cluster: bool = False) -> AsyncIterator[Daemon]:
    """A daemon whose speed timer runs by itself only with ``timer_seconds`` > 0."""
    config = daemon_config(redis_url, coa_port=coa_port)
    if cluster:
        config = replace(config, redis=replace(config.redis, cluster=True))
    d = Daemon(config, clock=SettableClock(now), speed_timer_seconds=timer_seconds)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


def parts(walk: Walk | None) -> tuple[float, int, int, int, bool] | None:
    """A walk's result without its duration."""
    return None if walk is None else (walk.boundary, walk.lines, walk.changed, walk.skipped, walk.complete)


def timer(d: Daemon) -> SpeedTimer:
    assert d.speed_timer is not None
    return d.speed_timer


def clock(d: Daemon) -> SettableClock:
    assert isinstance(d.clock, SettableClock)
    return d.clock


async def arrived(gateway: Gateway, count: int, timeout: float = 3.0) -> None:
    """Wait until the gateway has received ``count`` requests in all."""
    async with asyncio.timeout(timeout):
        while len(gateway.received) < count:
            await asyncio.sleep(0.01)


async def no_more(gateway: Gateway, count: int) -> None:
    await asyncio.sleep(0.2)
    assert len(gateway.received) == count


async def restricted_at_low_speed(d: Daemon, gateway: Gateway, ref: LineRef, msisdn_digit: int = 1) -> Counting:
    """R-22: a light_start line, coupon switch OFF (low), 121 MB at low speed on T0's day → restricted."""
    assert d.store is not None and d.sessions is not None
    now = d.clock.now()
    await d.store.provisioning.create_contract(ref.contract_id, "light_start", dt.date(2026, 10, 1), now)
    await d.store.provisioning.add_line(ref.contract_id, ref.msisdn, f"898110000000000{msisdn_digit:04d}",
                                        f"44010000000{msisdn_digit:04d}", "nano", False, now)
    session = await start_session(d, ref)
    await d.store.provisioning.set_coupon(ref, False, now)
    await d.sessions.on_line_change(ref, "coupon")
    assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
    await session.report(3, 121 * MB)
    assert (await gateway.next()).get(rp.FILTER_ID) == b"restricted"
    return session


def changes(to: str) -> float:
    return metrics.REGISTRY.get_sample_value("quotad_speed_timer_changes_total", {"to": to}) or 0.0


async def test_r22_restricted_line_goes_back_to_low_by_coa_at_the_japan_midnight_the_window_moves(
    redis_url: str,
) -> None:
    """R-22 / R-24: restricted for 121 MB at low speed on Nov 10 (Japan). The walk at Nov 12 00:00
    still sees it in the window (no CoA); the walk at Nov 13 00:00 does not, and one CoA-Request with
    the `low` profile reaches the gateway then, with no RADIUS request in between. A second run of
    the step sends nothing."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_url, port))
        assert d.store is not None
        await restricted_at_low_speed(d, gateway, LIGHT)
        before = changes("low")

        clock(d).set(NOV_13 - 1)  # Nov 12, 23:59:59: Nov 10 is still one of the 3 days
        walk = await timer(d).tick(clock(d).now())
        assert parts(walk) == (NOV_13 - 86400, 1, 0, 0, True)
        await no_more(gateway, 2)

        clock(d).set(NOV_13 + 0.01)
        walk = await timer(d).tick(clock(d).now())
        assert parts(walk) == (NOV_13, 1, 1, 0, True)
        coa = await gateway.next()
        assert (coa.code, coa.get(rp.FILTER_ID), coa.vsa(rp.VENDOR_QUOTAD, 3)) == (rp.COA_REQUEST, b"low", b"low")
        assert (coa.get(rp.ACCT_SESSION_ID), coa.get_int(rp.EVENT_TIMESTAMP)) == (b"gw-1", int(NOV_13))
        facts = await d.store.line_facts(LIGHT, clock(d).now())
        assert (facts.speed, facts.low_3day) == ("low", 0)
        assert changes("low") - before == 1

        assert await timer(d).tick(clock(d).now() + 3600) is None  # the same day: done
        await no_more(gateway, 3)
        assert await d.store.client.get(DONE_KEY) == repr(NOV_13).encode()


async def test_r10_throttled_line_goes_back_to_high_by_coa_when_the_month_bundle_arrives(redis_url: str) -> None:
    """R-10 / R-22 / R-24: on Nov 30 (Japan) a light_start line with its switch ON empties its pool
    (→ low), then uses 121 MB at low speed (→ restricted). At Dec 1 00:00 the walk grants December's
    bundle: one CoA-Request with the high profile and a 10 MB slice drawn from the new bundle (R-12),
    and the line is `high`; no RADIUS request in between."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_url, port, now=NOV_30_NOON))
        assert d.store is not None
        await d.store.provisioning.create_contract("light", "light_start", dt.date(2026, 11, 1), NOV_30_NOON)
        await d.store.provisioning.add_line("light", LIGHT.msisdn, "8981100000000000110", "440100000000011", "nano",
                                            False, NOV_30_NOON)
        session = await start_session(d, LIGHT)
        await session.report(3, 1010 * MB)  # the 10 MB slice and the 990 MB left of November's 1 GB
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
        await session.report(3, 1131 * MB)  # 121 MB at low speed
        assert (await gateway.next()).get(rp.FILTER_ID) == b"restricted"
        assert parts(await timer(d).tick(NOV_30_NOON)) == (DEC_1 - 86400, 1, 0, 0, True)

        clock(d).set(DEC_1 + 0.01)
        walk = await timer(d).tick(clock(d).now())
        assert parts(walk) == (DEC_1, 1, 1, 0, True)
        coa = await gateway.next()
        assert (coa.code, coa.get(rp.FILTER_ID), coa.vsa(rp.VENDOR_QUOTAD, 3), coa.vsa(rp.VENDOR_QUOTAD, 1)) == (
            rp.COA_REQUEST, b"high-lte", b"high-lte", (10 * MB).to_bytes(8, "big"))
        facts = await d.store.line_facts(LIGHT, clock(d).now())
        assert (facts.speed, facts.held, facts.pool, facts.low_3day) == ("high", 10 * MB, 990 * MB, 121 * MB)
        assert await timer(d).tick(clock(d).now()) is None
        await no_more(gateway, 3)


async def test_r24_two_timers_on_one_redis_one_walk_one_coa(redis_url: str) -> None:
    """Two daemons (own stores and Redis connections) check the same midnight at the same time:
    the lock lets one walk, the other does nothing, and the gateway gets one CoA."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        a = await stack.enter_async_context(daemon(redis_url, port))
        b = await stack.enter_async_context(daemon(redis_url, port))
        await restricted_at_low_speed(a, gateway, LIGHT)
        for d in (a, b):
            clock(d).set(NOV_13 + 0.01)
        walks = await asyncio.gather(timer(a).tick(NOV_13 + 0.01), timer(b).tick(NOV_13 + 0.01))
        assert sorted([parts(w) for w in walks], key=str) == [(NOV_13, 1, 1, 0, True), None]
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
        assert [await timer(d).tick(NOV_13 + 60) for d in (a, b)] == [None, None]
        await no_more(gateway, 3)


async def test_r24_two_walks_at_once_push_one_coa(redis_url: str) -> None:
    """Should both walk (a lock that lapsed under a stalled walker), the compare-and-set of the
    line's speed lets exactly one of them make the change and send the CoA."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        a = await stack.enter_async_context(daemon(redis_url, port))
        b = await stack.enter_async_context(daemon(redis_url, port))
        await restricted_at_low_speed(a, gateway, LIGHT)
        for d in (a, b):
            clock(d).set(NOV_13 + 0.01)
        walks = await asyncio.gather(timer(a).walk(NOV_13), timer(b).walk(NOV_13))
        assert sorted((w.lines, w.changed) for w in walks) == [(1, 0), (1, 1)]
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
        await no_more(gateway, 3)


async def test_a_dead_walkers_lock_lapses_and_another_process_walks(redis_url: str) -> None:
    """A process that took the lock and died leaves the midnight undone: while its lock lives the
    others skip, once it lapses the next check walks, and the CoA goes out."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_url, port))
        assert d.store is not None
        await restricted_at_low_speed(d, gateway, LIGHT)
        clock(d).set(NOV_13 + 0.01)
        assert await d.store.client.set(LOCK_KEY, "dead-host:4242:0000", px=300)
        assert await timer(d).tick(NOV_13 + 0.01) is None
        await no_more(gateway, 2)
        await asyncio.sleep(0.35)
        assert parts(await timer(d).tick(NOV_13 + 0.5)) == (NOV_13, 1, 1, 0, True)
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
        assert await d.store.client.exists(LOCK_KEY) == 0  # released at the end of the walk


async def test_a_midnight_missed_while_down_is_walked_at_startup(redis_url: str) -> None:
    """Every process was down over Nov 13 00:00: the first one to start walks that midnight by
    itself at once (the check at start), and the restricted line's session gets its CoA."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        async with daemon(redis_url, port) as before:
            await restricted_at_low_speed(before, gateway, LIGHT)
            assert parts(await timer(before).tick(T0)) == (NOV_13 - 3 * 86400, 1, 0, 0, True)
        async with daemon(redis_url, port, now=NOV_13 + 7200, timer_seconds=3600) as after:
            coa = await gateway.next()
            assert (coa.get(rp.FILTER_ID), coa.get_int(rp.EVENT_TIMESTAMP)) == (b"low", int(NOV_13 + 7200))
            assert after.store is not None
            assert await after.store.client.get(DONE_KEY) == repr(NOV_13).encode()
        await no_more(gateway, 3)


async def test_the_daemon_walks_by_itself_when_midnight_passes(redis_url: str) -> None:
    """The daemon's own timer (checking every 50 ms here; it also wakes at each midnight) notices
    the clock pass Nov 13 00:00 and pushes the CoA; nobody calls its step."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_url, port, timer_seconds=0.05))
        await restricted_at_low_speed(d, gateway, LIGHT)
        await no_more(gateway, 2)
        clock(d).set(NOV_13 + 0.01)
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
        await no_more(gateway, 3)
        assert metrics.REGISTRY.get_sample_value("quotad_speed_timer_done_timestamp_seconds") == NOV_13


async def test_live_sets_of_no_consumer_line_are_skipped(redis_url: str) -> None:
    """A live set whose contract is gone (or a public-safety line's, whose speed is its own) is
    counted as skipped; the walk goes on and completes."""
    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_url, port))
        assert d.store is not None
        await restricted_at_low_speed(d, gateway, LIGHT)
        await d.store.client.sadd("q:{c:gone}:live:819000000099", "s1")
        clock(d).set(NOV_13 + 0.01)
        assert parts(await timer(d).tick(NOV_13 + 0.01)) == (NOV_13, 1, 1, 1, True)
        assert (await gateway.next()).get(rp.FILTER_ID) == b"low"


async def test_the_walk_is_paced_to_its_duty(redis_url: str) -> None:
    """Off the hot path: at duty 0.2 the walk rests 4x what each slice of it took (1 ms slices
    here, 10 ms by default), so the same walk takes several times as long as unpaced (5x expected;
    3x asserted, for scheduler noise)."""
    import time

    async with AsyncExitStack() as stack:
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_url, port))
        assert d.store is not None and d.sessions is not None
        for i in range(24):
            ref = LineRef(f"pace{i}", f"81901000{i:04d}")
            await d.store.provisioning.create_contract(ref.contract_id, "light_start", dt.date(2026, 10, 1), T0)
            await d.store.provisioning.add_line(ref.contract_id, ref.msisdn, f"898110100000000{i:04d}",
                                                f"44010100000{i:04d}", "nano", False, T0)
            await start_session(d, ref)
        unpaced = SpeedTimer(d.store, d.sessions, d.clock.now, concurrency=4, duty=1.0)
        paced = SpeedTimer(d.store, d.sessions, d.clock.now, concurrency=4, duty=0.2, slice_seconds=0.001)
        # The unpaced walk's time is its fastest of three: a busy machine only adds to a run, and
        # one stalled unpaced walk (7.7 ms against ~3) once made 3x it more than the paced walk took.
        fast = float("inf")
        for _ in range(3):
            started = time.monotonic()
            assert (await unpaced.walk(NOV_13)).lines == 24
            fast = min(fast, time.monotonic() - started)
        started = time.monotonic()
        assert (await paced.walk(NOV_13)).lines == 24
        assert time.monotonic() - started >= 3 * fast
        assert gateway.received == []  # every line is at high speed and stays there


async def test_r73_the_walk_finds_live_lines_on_every_cluster_primary(redis_cluster_url: str) -> None:
    """Redis Cluster: the walk's SCAN visits every primary, so restricted lines whose contracts hash
    to different nodes all get their CoA at the midnight the window moves."""
    refs = [LineRef(f"cl{i}", f"81902000{i:04d}") for i in range(6)]
    async with AsyncExitStack() as stack:
        client = aioredis.RedisCluster.from_url(redis_cluster_url)
        stack.push_async_callback(client.aclose)
        await client.flushall(target_nodes=aioredis.RedisCluster.PRIMARIES)
        nodes = [client.get_node_from_key(f"q:{{c:{r.contract_id}}}:c") for r in refs]
        assert len({node.name for node in nodes if node is not None}) == 3
        gateway, port = await stack.enter_async_context(gateway_on_free_port())
        d = await stack.enter_async_context(daemon(redis_cluster_url, port, cluster=True))
        for i, ref in enumerate(refs):
            await restricted_at_low_speed(d, gateway, ref, msisdn_digit=100 + i)
        clock(d).set(NOV_13 + 0.01)
        assert parts(await timer(d).tick(NOV_13 + 0.01)) == (NOV_13, 6, 6, 0, True)
        await arrived(gateway, 18)
        await no_more(gateway, 18)
        assert sorted((p.get(rp.CALLING_STATION_ID), p.get(rp.FILTER_ID)) for p in gateway.received[12:]) == sorted(
            (r.msisdn.encode(), b"low") for r in refs)
