"""The NOC's view (R-74): every Grafana panel names an exported metric; the sampled gauges;
/readyz needs Redis and the scripts."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from prometheus_client.metrics_core import Metric

from quotad import metrics
from tests.integration.daemon_fixture import T0, daemon_config, running_daemon

DASHBOARD = Path(__file__).resolve().parents[2] / "config" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ("",)}


def exported_names() -> set[str]:
    import quotad.api.metrics
    import quotad.radius.coa  # noqa: F401

    names: set[str] = set()
    family: Metric
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_dashboard_query_names_an_exported_metric() -> None:
    board = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    queries = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(queries) >= 20
    for query in queries:
        named = set(re.findall(r"\bquotad_[a-z0-9_]+", query))
        assert named, query
        assert named <= exported, f"{query}: {named - exported} not exported"


async def test_pool_and_speed_gauges_are_sampled(redis_url: str) -> None:
    """R-74: pool bytes by plan and lines by speed class, from a walk over the contracts."""
    from quotad.sampler import PoolSampler

    async with running_daemon(daemon_config(redis_url)) as d:
        assert d.store is not None
        await d.store.provisioning.create_contract("f1", "family_share", dt.date(2026, 11, 1), T0)
        await d.store.provisioning.add_line("f1", "819000000001", "8981100000000000011", "440100000000001", "nano",
                                            False, T0)
        await d.store.provisioning.create_contract("m1", "minimum_start", dt.date(2026, 11, 1), T0)
        await d.store.provisioning.charge("m1", 3, "test", T0)
        sampler = PoolSampler(d.store, d.clock.now, interval=60, limit=100)
        assert await sampler.sample_once() == 2
    value = metrics.REGISTRY.get_sample_value
    assert value("quotad_pool_bytes", {"plan": "family_share"}) == 1_000_000_000
    assert value("quotad_pool_bytes", {"plan": "minimum_start"}) == 300_000_000
    assert value("quotad_pool_bytes", {"plan": "light_start"}) == 0
    assert value("quotad_contracts_sampled", {"plan": "family_share"}) == 1
    assert value("quotad_lines_by_speed", {"speed": "none"}) == 1


async def test_pool_walk_is_paced_to_its_duty(redis_url: str) -> None:
    """R-74 off the hot path: at duty 0.2 the walk rests 4x what its batches took, so the same
    walk takes several times as long as unpaced (5x expected; 3x asserted, for scheduler noise)
    and finds the same contracts."""
    import time

    from quotad.sampler import PoolSampler

    async with running_daemon(daemon_config(redis_url)) as d:
        assert d.store is not None
        for i in range(40):
            await d.store.provisioning.create_contract(f"pace{i}", "minimum_start", dt.date(2026, 11, 1), T0)
        unpaced = PoolSampler(d.store, d.clock.now, limit=1000, duty=1.0, batch=5)
        paced = PoolSampler(d.store, d.clock.now, limit=1000, duty=0.2, batch=5)
        started = time.monotonic()
        found = await unpaced.sample_once()
        fast = time.monotonic() - started
        started = time.monotonic()
        assert await paced.sample_once() == found >= 40
        assert time.monotonic() - started >= 3 * fast


async def test_readyz_reports_redis_and_scripts(redis_url: str) -> None:
    """/readyz: 200 with Redis reachable and every script loaded; reloads scripts after a flush."""
    import aiohttp
    import redis

    async with running_daemon(daemon_config(redis_url)) as d:
        url = f"http://127.0.0.1:{d.http_port}/readyz"
        redis.Redis.from_url(redis_url).script_flush()
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "ready", "redis": True, "scripts": True}
            async with http.get(f"http://127.0.0.1:{d.http_port}/healthz") as resp:
                assert resp.status == 200
