"""The embedded Redis's durability window is the one configured (`redis.appendfsync`): the
redis-server it starts runs with that fsync policy, `quotad serve` passes the setting through (one
process and the workers' supervisor alike), and what it acknowledged survives a SIGKILL of
redis-server and a restart on the same data directory.

A crash of the host itself (the case `always` is for) cannot be caused here: a SIGKILL leaves the
written data in the kernel's page cache, so it shows the append-only file is written before the
reply leaves, not that it reached the disk."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from quotad import cli
from quotad.quota.embedded import EmbeddedRedis
from tests.reliability.helpers import QuotadProcess


@pytest.fixture
def stop_after() -> Iterator[list[EmbeddedRedis]]:
    servers: list[EmbeddedRedis] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_embedded_redis_runs_with_the_chosen_appendfsync(
    tmp_path: Path, policy: str, stop_after: list[EmbeddedRedis]
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path, appendfsync=policy)
    stop_after.append(server)
    server.start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    assert client.config_get("appendfsync") == {"appendfsync": policy}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()


def test_embedded_redis_refuses_an_unknown_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appendfsync must be one of always, everysec, no, got 'sometimes'"):
        EmbeddedRedis(data_dir=tmp_path, appendfsync="sometimes")


def test_always_keeps_every_acknowledged_write_over_a_sigkill(tmp_path: Path, stop_after: list[EmbeddedRedis]) -> None:
    """2,000 acknowledged INCRBYs and a quota-like hash, SIGKILL of redis-server right after the last
    reply (no shutdown, no final fsync), a new server on the same files: every value as acknowledged."""
    server = EmbeddedRedis(data_dir=tmp_path, appendfsync="always")
    stop_after.append(server)
    server.start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    expected: dict[str, int] = {}
    for i in range(2000):
        key = f"durability:{i % 100}"
        expected[key] = expected.get(key, 0) + i
        assert client.incrby(key, i) == expected[key]  # the reply: acknowledged
    assert client.hset("durability:pool", mapping={"bytes": 1_000_000_000, "used": 123_456_789}) == 2
    client.close()
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    assert server.process.wait(10) == -signal.SIGKILL

    again = EmbeddedRedis(data_dir=tmp_path, appendfsync="always")
    stop_after.append(again)
    again.start()
    client = redis.Redis.from_url(again.url, decode_responses=True)
    assert client.dbsize() == 101
    assert {key: int(client.get(key) or -1) for key in expected} == expected
    assert sum(expected.values()) == 1999 * 2000 // 2
    assert client.hgetall("durability:pool") == {"bytes": "1000000000", "used": "123456789"}
    client.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_quotad_serve_starts_the_embedded_redis_with_redis_appendfsync(
    tmp_path: Path, workers: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The setting reaches redis-server from `quotad serve` (one process, or the supervisor of
    several workers), and `quotad redis-status` reports it with its durability window."""
    quotad = QuotadProcess(tmp_path, extra=f"workers = {workers}", redis_extra='appendfsync = "always"\n')
    quotad.start()
    try:
        assert cli.main(["redis-status", "--config", str(quotad.config)]) == 0
        lines = capsys.readouterr().out.splitlines()
    finally:
        assert quotad.kill(signal.SIGTERM) == 0
    assert lines[0] == f"redis: unix://{tmp_path / 'data' / 'redis.sock'} (embedded)"
    assert lines[5:7] == [
        "aof: on (appendfsync always), last write ok, last rewrite ok",
        "durability: an OS crash or power loss loses no acknowledged write (fsync before the replies)",
    ]
