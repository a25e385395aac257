"""The embedded Redis killed under accounting load (kill -9, as the OOM killer does): quotad notices
at once, logs it, starts it again on the same data directory, is ready again within seconds, and
every octet a gateway had acknowledged is counted exactly once (R-71). `quotad serve` is a real
process, the gateway sends over real UDP; one process, and two workers (where the supervisor
reaps the server). When the server cannot be started again, quotad exits 1 for systemd."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis as sync_redis

from quotad.quota.embedded import RESTART_DELAYS, aof_files, is_server_name
from tests.reliability.gateway import Gateway, Session, counted_octets, provision
from tests.reliability.helpers import QuotadProcess, alive, ready, wait_for

CONTRACT = "emb-c1"
LINES = ["819400000001", "819400000002", "819400000003"]


def server_pid(quotad: QuotadProcess) -> int:
    return next(pid for pid in quotad.children() if is_server_name(Path(f"/proc/{pid}/comm").read_text()))


def events(quotad: QuotadProcess) -> list[dict[str, object]]:
    """The log's JSON events, one whole event a line (tests/unit/test_log.py says why that holds
    with several processes on one stderr)."""
    return [json.loads(line) for line in quotad.log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.parametrize("workers", [1, 2])
def test_r71_embedded_redis_killed_under_load_comes_back_and_counts_every_octet(tmp_path: Path, workers: int) -> None:
    quotad = QuotadProcess(tmp_path, extra=f"workers = {workers}")
    quotad.start()
    url = f"unix://{tmp_path / 'data' / 'redis.sock'}"
    asyncio.run(provision(url, CONTRACT, LINES))
    sessions = [Session(f"ek-{line[-1]}-{i}", line) for line in LINES for i in range(3)]
    first = server_pid(quotad)
    back_after: list[float] = []

    async def scenario() -> Gateway:
        async with Gateway(quotad.auth, quotad.acct, sessions) as gw:
            for s in sessions:
                assert await gw.attach(s) is not None and s.framed_ip
            load = asyncio.ensure_future(gw.load(8.0))
            await asyncio.sleep(1.5)
            killed = time.monotonic()
            os.kill(first, signal.SIGKILL)
            await asyncio.to_thread(wait_for, lambda: not alive(first), 5, "the server to die")
            await asyncio.to_thread(wait_for, lambda: ready(quotad.http), 10, "readiness to return")
            back_after.append(time.monotonic() - killed)
            await load
            await gw.settle()
            return gw

    gw = asyncio.run(scenario())
    second = server_pid(quotad)
    assert second != first
    client = sync_redis.Redis.from_url(url)
    expected = sum(s.acked for s in sessions)
    counted = counted_octets(client, CONTRACT, LINES)
    client.close()
    print(f"embedded Redis SIGKILL ({workers} worker(s)): back in {back_after[0]:.2f} s; {gw.sent_reports} reports "
          f"sent, {gw.acked_reports} acknowledged, {counted} octets counted, {expected} acknowledged")
    assert gw.acked_reports > 100
    assert counted == expected
    logged = events(quotad)
    died = [e for e in logged if e["event"] == "embedded_redis_died"]
    restarted = [e for e in logged if e["event"] == "embedded_redis_restarted"]
    assert [(e["pid"], e["status"]) for e in died] == [(first, -signal.SIGKILL)]
    assert [(e["pid"], e["attempt"]) for e in restarted] == [(second, 1)]
    assert quotad.kill(signal.SIGTERM) == 0


def test_embedded_redis_that_cannot_start_again_makes_quotad_exit_1(tmp_path: Path) -> None:
    """The server is killed with its append-only file unreadable (the manifest of Redis 7 and
    Valkey, the one file of Redis 6.2, overwritten): every restart fails, and quotad exits 1 within
    the back-off's bound instead of running on without Redis."""
    quotad = QuotadProcess(tmp_path)
    quotad.start()
    data = tmp_path / "data"
    pid = server_pid(quotad)
    proc = quotad.proc
    assert proc is not None
    files = aof_files(data)
    manifest = [f for f in files if f.name.endswith(".manifest")]
    (manifest or files)[0].write_bytes(b"not an append-only file\n")
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(30) == 1
    quotad.proc = None
    assert time.monotonic() - started < sum(RESTART_DELAYS) + 10
    logged = [e["event"] for e in events(quotad)]
    assert logged.count("embedded_redis_died") == 1
    assert logged.count("embedded_redis_restart_failed") == 5
    assert "embedded_redis_failing" in logged
