"""The redis-py client the tests build stores on (the daemon builds its own in quotad/app.py)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis

from quotad.quota.cluster import RedisCluster


def make_client(url: str, *, cluster: bool = False, max_connections: int = 64) -> Any:
    """A redis.asyncio client for the store.

    Single Redis: a blocking pool, so requests in flight beyond max_connections wait for a
    connection instead of failing. Cluster (url names any node): RedisCluster, whose per-node
    pools raise instead of waiting; the store keeps its calls in flight under
    QuotaSettings.max_in_flight, so keep max_connections above that.
    """
    if cluster:
        return RedisCluster.from_url(url, max_connections=max(max_connections, 100))
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=None)
    return aredis.Redis(connection_pool=pool)
