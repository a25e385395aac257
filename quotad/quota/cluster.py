"""redis-py's asyncio cluster client, with its failover fault turned into a Redis error.

During a Redis Cluster failover redis-py (8.1) sometimes raises ``AttributeError`` from a command:
the cluster client disconnects a node's connections when the slot map changes, and a command that
was using one of them finds its reader or writer gone (``'NoneType' object has no attribute …``).
Nothing was acknowledged, and the gateway's retry is served afresh on the new primary
(tests/reliability/test_cluster_failover.py checks the totals), but as an AttributeError the
request was logged as ``handler_failed`` and counted as a ``no_reply`` drop, a quotad fault to the
NOC. Here it becomes a ``ConnectionError`` (a RedisError: counted in ``quotad_redis_errors_total``
like any lost connection) and is counted on its own in
``quotad_redis_cluster_connection_lost_total``.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from quotad import metrics


class ClusterConnectionLost(RedisConnectionError):
    """A cluster node's connection was closed under a command (redis-py's AttributeError)."""


class RedisCluster(aioredis.RedisCluster):
    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            metrics.REDIS_CLUSTER_CONNECTION_LOST.inc()
            raise ClusterConnectionLost(f"cluster connection closed under {args[0]!r}: {exc}") from exc
