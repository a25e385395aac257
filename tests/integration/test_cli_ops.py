"""Operator commands: `quotad --version` and `quotad redis-status` (read-only report on Redis)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import redis

from quotad import app, cli, status
from quotad.config import Config
from quotad.quota.store import QuotaStore
from tests.conftest import free_port


def _config(tmp_path: Path, redis_section: str) -> str:
    path = tmp_path / "quotad.toml"
    path.write_text(f"[redis]\n{redis_section}\n")
    path.chmod(0o600)
    return str(path)


def _script_count() -> int:
    config = Config()
    store = QuotaStore(redis.asyncio.Redis(), app.quota_settings_from(config), app.catalog_from(config))
    return len(store.runner.scripts)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    from quotad.quota import resp
    from quotad.radius import packet

    assert capsys.readouterr().out == (
        f"quotad {version('quotad')} (RADIUS codec: {packet.IMPLEMENTATION}, RESP encoder: {resp.IMPLEMENTATION})\n"
    )


def test_redis_status_reports_a_reachable_redis(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    client.set("k1", "v")
    path = _config(tmp_path, f'url = "{redis_url}"')
    assert cli.main(["redis-status", "--config", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    scripts = _script_count()
    assert lines[0] == f"redis: {redis_url} (external)"
    assert lines[1] == "ping: ok"
    assert lines[2] == f"version: {client.info()['redis_version']}"
    assert lines[3].startswith("used_memory: ") and lines[3].endswith(", policy noeviction)")
    assert lines[4:] == [
        "keys: 1",
        "aof: on (appendfsync everysec), last write ok, last rewrite ok",
        "durability: an OS crash or power loss loses up to ~1 s of acknowledged writes (2 s worst case)",
        f"scripts: 0/{scripts} loaded",
    ]
    # once quotad has loaded its scripts
    assert cli.main(["provision", "--config", path, "contract", "--id", "c1", "--plan", "light_start"]) == 0
    capsys.readouterr()
    assert cli.main(["redis-status", "--config", path]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"scripts: {scripts}/{scripts} loaded"
    client.close()


def test_redis_status_on_a_server_that_refuses_config(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A managed Redis or an ACL without CONFIG: the report says the fsync policy is unknown, and
    why, instead of failing."""
    client = redis.Redis.from_url(redis_url)
    assert client.acl_setuser("noconfig", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-config"])
    try:
        url = redis_url.replace("redis://", "redis://noconfig:pw@")
        assert cli.main(["redis-status", "--config", _config(tmp_path, f'url = "{url}"')]) == 0
        lines = capsys.readouterr().out.splitlines()
    finally:
        client.acl_deluser("noconfig")
        client.close()
    assert lines[0] == f"redis: {url.replace(':pw@', ':***@')} (external)"
    assert lines[5] == "aof: on (appendfsync unknown), last write ok, last rewrite ok"
    # Redis 6.2: "… no permissions to run the 'config' command or its subcommand"; Redis 7 and
    # Valkey 8: "User noconfig has no permissions to run the 'config|get' command"
    assert lines[6].startswith("durability: unknown (CONFIG GET refused: ") and lines[6].endswith(")")
    assert re.search(r"no permissions to run the 'config(\|get)?' command", lines[6]), lines[6]
    assert len(lines) == 8


def test_durability_window_by_policy() -> None:
    assert status.durability(True, "always") == \
        "an OS crash or power loss loses no acknowledged write (fsync before the replies)"
    assert status.durability(True, "everysec") == \
        "an OS crash or power loss loses up to ~1 s of acknowledged writes (2 s worst case)"
    assert status.durability(True, "no") == \
        "an OS crash or power loss loses up to ~30 s of acknowledged writes (the OS decides)"
    assert status.durability(True, "unknown", "CONFIG GET refused: unknown command 'CONFIG'") == \
        "unknown (CONFIG GET refused: unknown command 'CONFIG')"
    for policy in ("always", "everysec", "unknown"):
        assert status.durability(False, policy) == \
            "append-only file off: a restart of Redis loses what its last snapshot lacks"


def test_redis_status_fails_when_redis_does_not_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    assert cli.main(["redis-status", "--config", _config(tmp_path, f'url = "{url}"\ntimeout = 0.5')]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"redis: redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]} (external)"
    assert lines[1].startswith("ping: failed (ConnectionError: ")
    assert len(lines) == 2


def test_redis_status_without_a_running_embedded_redis(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["redis-status", "--config", _config(tmp_path, f'data_dir = "{tmp_path / "data"}"')])
    assert exc.value.code == (
        f"redis.url is empty and no embedded Redis runs at {tmp_path / 'data' / 'redis.sock'}: "
        "start `quotad serve` first"
    )


def test_redis_status_refuses_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, 'url = "redis://127.0.0.1:7000/0"\ncluster = true')
    assert cli.main(["redis-status", "--config", path]) == 2
    assert capsys.readouterr().err == \
        "redis-status: redis.cluster is true; it reports on a single Redis server only\n"


def test_masked_hides_only_the_password() -> None:
    assert status.masked("redis://:pw@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert status.masked("rediss://quotad:p%40ss@redis.example:6380/1") == "rediss://quotad:***@redis.example:6380/1"
    assert status.masked("redis://10.0.0.5:6379/0") == "redis://10.0.0.5:6379/0"
    assert status.masked("unix:///var/lib/quotad/data/redis.sock") == "unix:///var/lib/quotad/data/redis.sock"
