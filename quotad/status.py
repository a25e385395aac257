"""`quotad redis-status`: what an operator checks first about quotad's Redis, read-only.

Reachability, server version, memory, key count, persistence (append-only file on, its fsync policy,
last write and rewrite ok), what a crash of the host would lose (the durability window), and
whether Redis holds quotad's scripts (a restarted Redis without them is normal: quotad loads them
again on its next call or /readyz). A server that refuses CONFIG (a managed Redis, an ACL without
it) is reported with its fsync policy unknown. Exit status 1 when Redis does not answer or
reports a failed append-only write, else 0. A single Redis server only (not redis.cluster).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

# What a crash of the host (OS crash, power loss) loses of what Redis acknowledged, by appendfsync;
# a crash of the redis-server process alone loses nothing with any of them (the writes are in the kernel).
WINDOW = {
    "always": "an OS crash or power loss loses no acknowledged write (fsync before the replies)",
    "everysec": "an OS crash or power loss loses up to ~1 s of acknowledged writes (2 s worst case)",
    "no": "an OS crash or power loss loses up to ~30 s of acknowledged writes (the OS decides)",
}


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
        fsync, refused = await _appendfsync(client)
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
        f"aof: {'on' if aof_on else 'off'} (appendfsync {fsync}), last write {write}, last rewrite {rewrite}",
        f"durability: {durability(aof_on, fsync, refused)}",
        f"scripts: {loaded}/{len(shas)} loaded",
    ]
    return lines, 1 if aof_on and write != "ok" else 0


async def _appendfsync(client: Any) -> tuple[str, str]:
    """The server's appendfsync (CONFIG GET with one pattern: Redis 6.2 takes no more), and why it
    is unknown if the server refuses CONFIG (renamed or disabled, as managed Redis services do, or an
    ACL without it); INFO, which says whether the append-only file is on, needs no such permission."""
    from redis.exceptions import ResponseError

    try:
        config = await client.config_get("append*")
    except ResponseError as exc:
        return "unknown", f"CONFIG GET refused: {exc}"
    return {_text(k): _text(v) for k, v in config.items()}.get("appendfsync", "unknown"), ""


def durability(aof_on: bool, fsync: str, refused: str = "") -> str:
    """What a crash loses of what Redis acknowledged."""
    if not aof_on:
        return "append-only file off: a restart of Redis loses what its last snapshot lacks"
    if fsync not in WINDOW:
        return f"unknown ({refused or f'appendfsync {fsync}'})"
    return WINDOW[fsync]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
