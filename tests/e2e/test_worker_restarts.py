"""Metrics with several workers (multiprocess mode): quotad_worker_restarts_total counts each worker
the supervisor replaces; quotad_redis_up is the workers' view of Redis, not the supervisor's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.e2e.test_daemon_process import _wait_ready
from tests.e2e.test_workers import _workers


def _eventually(http_port: int, name: str, expected: float, timeout: float = 10.0) -> float:
    """The value once it is ``expected`` (or at the deadline): a worker just started reports its
    first Redis check, and a replaced one appears, within moments."""
    deadline = time.monotonic() + timeout
    while (value := _value(http_port, name)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def _value(http_port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2) as resp:
        lines = [ln for ln in resp.read().decode().splitlines() if ln.startswith(name + " ")]
    assert len(lines) == 1
    return float(lines[0].split()[1])


def test_worker_metrics(tmp_path: Path) -> None:
    ports = {"auth": free_port(socket.SOCK_DGRAM), "acct": free_port(socket.SOCK_DGRAM), "http": free_port()}
    conf = tmp_path / "quotad.toml"
    conf.write_text(
        f'[server]\nworkers = 2\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\n'
        f'http_port = {ports["http"]}\n[redis]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", "serve", "--config", str(conf)],
                            stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ports["http"], proc)
        assert _eventually(ports["http"], "quotad_redis_up", 1.0) == 1.0
        assert _value(ports["http"], "quotad_worker_restarts_total") == 0.0
        workers = _workers(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (len(_workers(proc.pid)) < 2 or workers[0] in _workers(proc.pid)):
            time.sleep(0.1)
        _wait_ready(ports["http"], proc)
        assert _value(ports["http"], "quotad_worker_restarts_total") == 1.0
        assert _eventually(ports["http"], "quotad_redis_up", 1.0) == 1.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
