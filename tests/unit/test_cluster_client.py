"""redis-py's AttributeError during a Cluster failover (a node's connection closed under a
command) reaches quotad as a Redis error, counted on its own (quota/cluster.py). redis-py's
failing step stands in below our class in the method order; no server is needed."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from quotad import metrics
from quotad.quota.cluster import ClusterConnectionLost, RedisCluster


def _lost() -> float:
    """The counter as a scrape reads it (in one process metrics count in plain numbers until read)."""
    return metrics.REGISTRY.get_sample_value("quotad_redis_cluster_connection_lost_total") or 0.0


class _ClosedUnderCommand(aioredis.RedisCluster):
    """What redis-py 8.1 raises when a failover closed the connection a command was using."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")


class _Probe(RedisCluster, _ClosedUnderCommand):
    pass


async def test_attribute_error_becomes_a_counted_connection_error() -> None:
    client = _Probe(host="127.0.0.1", port=1)  # never connects: the stand-in raises first
    before = _lost()
    with pytest.raises(ClusterConnectionLost) as raised:
        await client.evalsha("0" * 40, 1, "q:{c:x}:contract")
    assert isinstance(raised.value, RedisConnectionError) and isinstance(raised.value, RedisError)
    assert isinstance(raised.value.__cause__, AttributeError)
    assert _lost() == before + 1
    await client.aclose()


async def test_other_errors_pass_unchanged() -> None:
    """Other failures keep their class and are not counted (no node answers at port 1: redis-py
    raises RedisClusterException after its retries)."""
    client = RedisCluster(host="127.0.0.1", port=1)
    before = _lost()
    with pytest.raises(RedisClusterException):
        await client.get("k")
    assert _lost() == before
    await client.aclose()
