"""Shared pieces of the reliability tests: /metrics scraping, a real redis-server process that a
test may stop and start, and quotad run as the process an operator runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import redis as sync_redis

from quotad.quota.embedded import find_redis_server
from tests.conftest import free_port

QUOTAD = [sys.executable, "-m", "quotad.cli"]
T = TypeVar("T")


# --- /metrics --------------------------------------------------------------------------------------


def scrape(http_port: int, scheme: str = "http") -> dict[str, float]:
    """Every sample of /metrics as {'name{label="v",...}': value} (labels in exposition order)."""
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """One sample by name and labels (0 when absent)."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return samples.get(f"{name}{{{inner}}}" if labels else name, 0.0)


def ready(http_port: int) -> bool | None:
    """/readyz: True (200), False (503), None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as resp:
            return bool(json.loads(resp.read())["redis"])
    except urllib.error.HTTPError as exc:
        return False if exc.code == 503 else None
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (exists and is not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, sync_redis.RedisError):
            pass
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


# --- a redis-server process a test can stop and restart ----------------------------------------------


class RedisProcess:
    """redis-server on a loopback TCP port with AOF (fsync every second), like a production Redis."""

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "everysec") -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
                "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.client().ping, 10, "redis-server to answer PING")

    def client(self) -> sync_redis.Redis:
        return sync_redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: Redis flushes its AOF and exits. SIGKILL: what was not fsynced is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


# --- quotad as a process ----------------------------------------------------------------------------


class QuotadProcess:
    """`quotad serve` with a config file written to ``workdir``; ports are chosen free once and kept
    over restarts (a restart on the same data directory is what the tests are about)."""

    def __init__(self, workdir: Path, extra: str = "", redis_url: str = "", redis_extra: str = "") -> None:
        self.workdir = workdir
        self.auth = free_port(socket.SOCK_DGRAM)
        self.acct = free_port(socket.SOCK_DGRAM)
        self.http = free_port()
        self.config = workdir / "quotad.toml"
        redis = f'url = "{redis_url}"\n' if redis_url else f'data_dir = "{workdir / "data"}"\n'
        self.config.write_text(
            f'[server]\nauth_port = {self.auth}\nacct_port = {self.acct}\nhttp_port = {self.http}\n'
            f'log_level = "info"\n{extra}\n[redis]\n{redis}{redis_extra}\n'
        )
        os.chmod(self.config, 0o600)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"quotad-{self.starts}.log"

    def start(self, timeout: float = 20.0) -> None:
        self.starts += 1
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([*QUOTAD, "serve", "--config", str(self.config)], stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"quotad exited {self.proc.returncode}: {self.log.read_text()}")
            if ready(self.http):
                return
            time.sleep(0.05)
        raise AssertionError(f"quotad not ready: {self.log.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(15)
        self.proc = None
        return code

    def children(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]


# --- a daemon in a thread of its own (for synchronous tests such as hypothesis's) --------------------


class ThreadedDaemon:
    """quotad's Daemon on its own event loop in a background thread: the test drives it over real
    sockets from the main thread, as a gateway would."""

    def __init__(self, config: Any, now: float) -> None:
        from quotad.app import Daemon
        from quotad.clock import SettableClock

        self.daemon = Daemon(config, clock=SettableClock(now))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        self.run(self.daemon.start())
        return self.daemon

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.daemon.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def udp_exchange(port: int, datagram: bytes, timeout: float = 1.0, want_id: int | None = None) -> bytes | None:
    """Send one datagram from a fresh socket; the first reply (with Identifier ``want_id`` if given)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        sock.sendto(datagram, ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return None
            if want_id is None or (len(data) > 1 and data[1] == want_id):
                return data
