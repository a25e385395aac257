"""Store fixtures: each store test runs on a single Redis (redis-py and the pipelining client) and
on a Redis Cluster (R-73); the cluster is started once per test session."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis as sync_redis

from quotad.quota.embedded import EmbeddedRedisError, find_redis_server
from quotad.quota.model import QuotaSettings
from quotad.quota.store import QuotaStore
from tests.integration.storekit import (
    StoreFactory,
    _cluster_ok,
    _create_cluster,
    _free_cluster_ports,
    _start_node,
    _wait,
    catalog,
)
from tests.redis_client import make_client


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-primary Redis Cluster; the tests that use it are skipped if it cannot start."""
    try:
        binary = find_redis_server()
    except EmbeddedRedisError as exc:
        pytest.skip(f"no redis-server: {exc}")
    base = tmp_path_factory.mktemp("cluster")
    ports = _free_cluster_ports(3)
    procs = [_start_node(binary, base / str(port), port) for port in ports]
    clients = [sync_redis.Redis(host="127.0.0.1", port=port) for port in ports]
    try:
        if not all(_wait(client.ping, 10) for client in clients):
            pytest.skip("cluster nodes did not start")
        try:
            _create_cluster(ports, clients)
        except (subprocess.SubprocessError, sync_redis.RedisError) as exc:
            pytest.skip(f"cluster could not be created: {exc}")
        if not _wait(lambda: _cluster_ok(clients), 30):
            pytest.skip("cluster did not reach state ok")
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


@pytest.fixture(params=["redis", "fast", "cluster"])
def backend(request: pytest.FixtureRequest) -> tuple[str, bool, bool]:
    """Each store test runs on a single Redis through redis-py, on a single Redis through the
    daemon's pipelining client (the hot path's), and on a Redis Cluster (R-73), flushed first.
    Returns (url, cluster, fast)."""
    if request.param != "cluster":
        return request.getfixturevalue("redis_url"), False, request.param == "fast"
    url = request.getfixturevalue("redis_cluster_url")
    cluster = sync_redis.RedisCluster.from_url(url)
    cluster.flushall(target_nodes=sync_redis.RedisCluster.PRIMARIES)
    cluster.close()
    return url, True, False


@pytest.fixture
async def make_store(backend: tuple[str, bool, bool]) -> AsyncIterator[StoreFactory]:
    """Build stores on the test's Redis (settings may be overridden per test)."""
    from quotad.quota.fastredis import FastRedis

    url, cluster, fast = backend
    made: list[QuotaStore] = []

    async def make(**overrides: Any) -> QuotaStore:
        client = make_client(url, cluster=cluster, max_connections=16)
        store = QuotaStore(client, replace(QuotaSettings(), **overrides), catalog(),
                           FastRedis(url) if fast else None)
        await store.load_scripts()
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
        if store.fast is not None:
            await store.fast.aclose()


@pytest.fixture
async def store(make_store: StoreFactory) -> QuotaStore:
    return await make_store()
