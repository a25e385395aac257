"""quotad killed with SIGKILL mid-load and restarted on the same data directory (its embedded
Redis, AOF on): no acknowledged usage lost, none counted twice, the embedded Redis does not outlive
its parent, and the address leases of sessions that died meanwhile are reclaimed (R-71, R-5)."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import time
from pathlib import Path

import redis as sync_redis

from quotad.policy.plans import default_catalog
from quotad.quota import keys as k
from quotad.quota.embedded import is_server_name
from quotad.quota.model import AttachRequest, LineRef, QuotaSettings
from quotad.quota.store import QuotaStore
from tests.redis_client import make_client
from tests.reliability.gateway import Gateway, Session, counted_octets, provision
from tests.reliability.helpers import QuotadProcess, alive, wait_for

CONTRACT = "kill-c1"
LINES = ["819200000001", "819200000002", "819200000003"]


def test_r71_sigkill_mid_load_restart_nothing_lost_nothing_twice_leases_reclaimed(tmp_path: Path) -> None:
    quotad = QuotadProcess(tmp_path)
    quotad.start()
    url = f"unix://{tmp_path / 'data' / 'redis.sock'}"
    asyncio.run(provision(url, CONTRACT, LINES))
    live = [Session(f"kl-{line[-1]}-{i}", line) for line in LINES for i in range(3)]
    dead = [Session(f"kd-{line[-1]}", line) for line in LINES]  # their gateway loses them in the outage
    redis_pid = next(pid for pid in quotad.children() if is_server_name(Path(f"/proc/{pid}/comm").read_text()))

    async def scenario() -> Gateway:
        async with Gateway(quotad.auth, quotad.acct, live + dead) as gw:
            for s in live + dead:
                reply = await gw.attach(s)
                assert reply is not None and s.framed_ip, "attached with an address"
            dead_gw = Gateway(quotad.auth, quotad.acct, dead)
            async with dead_gw:
                first = asyncio.ensure_future(dead_gw.load(1.0))
                # Until enough reports went through the restarted quotad, not for a fixed time: a
                # restart takes 1 s on an idle machine and 5 s on a busy one (a full test run).
                stop = asyncio.Event()
                load = asyncio.ensure_future(gw_live.load(60.0, stop=stop))
                await asyncio.sleep(1.5)
                await first
                before_kill.append(gw_live.acked_reports)
                code = await asyncio.to_thread(quotad.kill, signal.SIGKILL)
                assert code == -signal.SIGKILL
                # the embedded Redis follows its parent (PR_SET_PDEATHSIG), flushing its AOF
                await asyncio.to_thread(wait_for, lambda: not alive(redis_pid), 10, "embedded redis to exit")
                for s in dead:  # their Stop goes unanswered: quotad is down; the gateway gives up
                    assert not await dead_gw.report(s, status=2, tries=1)
                await asyncio.to_thread(quotad.start)
                restarted = gw_live.acked_reports
                while gw_live.acked_reports < restarted + 150 and not load.done():
                    await asyncio.sleep(0.05)
                stop.set()
                await load
                after_restart.append(gw_live.acked_reports - restarted)
                await gw_live.settle()
                for s in dead:
                    s.sent = s.acked  # the unanswered Stop counts for nothing
            return gw_live

    gw_live = Gateway(quotad.auth, quotad.acct, live)
    before_kill: list[int] = []
    after_restart: list[int] = []

    async def run() -> Gateway:
        async with gw_live:
            return await scenario()

    gw = asyncio.run(run())
    assert before_kill[0] > 0 and after_restart[0] >= 150  # load on both sides of the SIGKILL
    client = sync_redis.Redis.from_url(url)
    expected = sum(s.acked for s in live + dead)
    counted = counted_octets(client, CONTRACT, LINES)
    print(f"quotad SIGKILL: {gw.sent_reports} reports sent, {gw.acked_reports} acknowledged, "
          f"{counted} octets counted, {expected} acknowledged")
    assert counted == expected

    # Leases: the dead sessions still hold their addresses until their lease runs out; then the
    # next attaches get exactly those addresses back, while the live sessions keep theirs.
    leases_key = k.IpPoolKeys("100.64.0.0/16").all()[0]
    scores = {m.decode(): s for m, s in client.zrange(leases_key, 0, -1, withscores=True)}
    dead_ips = {s.framed_ip for s in dead}
    live_ips = {s.framed_ip for s in live}
    assert len(dead_ips | live_ips) == len(live + dead)
    ints = {ip: str(int(ipaddress.IPv4Address(ip))) for ip in dead_ips | live_ips}
    dead_expiry = max(scores[ints[ip]] for ip in dead_ips)
    live_expiry = min(scores[ints[ip]] for ip in live_ips)
    assert dead_expiry < live_expiry

    async def reclaim() -> tuple[list[str | None], list[str | None]]:
        store = QuotaStore(make_client(url), QuotaSettings(), default_catalog())
        try:
            before = [(await store.attach(AttachRequest(LineRef(CONTRACT, LINES[0]), None, f"early-{i}", "127.0.0.1",
                                                       time.time()))).framed_ip for i in range(1)]
            after = [(await store.attach(AttachRequest(LineRef(CONTRACT, LINES[i % 3]), None, f"new-{i}",
                                                      "127.0.0.1", dead_expiry + 0.001))).framed_ip
                     for i in range(len(dead))]
            return before, after
        finally:
            await store.close()

    early, reclaimed = asyncio.run(reclaim())
    assert not set(early) & (dead_ips | live_ips)  # before expiry: a fresh address
    assert set(reclaimed) == dead_ips
    assert quotad.kill(signal.SIGTERM) == 0
