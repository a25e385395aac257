"""Shared fixtures: a real redis-server on a free port, started once per test session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis

from quotad.quota.embedded import EmbeddedRedis


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel says is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def implementation_of(public: ModuleType, kind: str) -> ModuleType:
    """The build a compiled module's tests run against (``public``: its public module, as
    radius.packet; ``kind``: "compiled" or "python"). Without a build the compiled run is skipped;
    CI sets QUOTAD_REQUIRE_COMPILED=1 to fail instead."""
    if kind == "python":
        return public.plain()
    if not public.COMPILED:
        message = f"{public.__name__} does not run compiled: {public.IMPLEMENTATION}"
        if os.environ.get("QUOTAD_REQUIRE_COMPILED"):
            pytest.fail(message)
        pytest.skip(message)
    return public.running()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real server for the whole test session: the embedded default (Valkey 8.1), or the
    binary QUOTAD_REDIS_SERVER names (CI runs the Redis tests on each server of the matrix)."""
    server = EmbeddedRedis(data_dir=Path(tmp_path_factory.mktemp("redis")), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    """URL of the session's redis-server, flushed before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
