"""`quotad redis-status`: what an operator checks first about quotad's Redis, read-only.

Reachability, server version, memory, key count, persistence (append-only file on, last write and
rewrite ok) and whether Redis holds quotad's scripts (a restarted Redis without them is normal:
quotad loads them again on its next call or /readyz). Exit status 1 when Redis does not answer or
reports a failed append-only write, else 0. A single Redis server only (not redis.cluster).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def masked(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


async def report(client: Any, shas: list[str]) -> tuple[list[str], int]:
    """Lines to print and the exit status, from a redis.asyncio client and quotad's script SHA1s."""
    from redis.exceptions import RedisError

    try:
        await client.ping()
        info = await client.info()
        keys = await client.dbsize()
        loaded = sum(bool(x) for x in await client.script_exists(*shas))
    except (RedisError, OSError) as exc:
        return [f"ping: failed ({type(exc).__name__}: {exc})"], 1
    aof_on = str(info.get("aof_enabled")) == "1"
    write = info.get("aof_last_write_status", "?")
    rewrite = info.get("aof_last_bgrewrite_status", "?")
    lines = [
        "ping: ok",
        f"version: {info.get('redis_version', '?')}",
        f"used_memory: {info.get('used_memory_human', '?')} (maxmemory {info.get('maxmemory_human', '?')}, "
        f"policy {info.get('maxmemory_policy', '?')})",
        f"keys: {keys}",
        f"aof: {'on' if aof_on else 'off'}, last write {write}, last rewrite {rewrite}",
        f"scripts: {loaded}/{len(shas)} loaded",
    ]
    return lines, 1 if aof_on and write != "ok" else 0
