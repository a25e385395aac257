"""Several worker processes on the same ports (``server.workers`` > 1).

One Python process uses one core; a gateway fleet wants more. The supervisor starts the embedded
Redis (if no URL is configured) once, then forks N workers, each a whole daemon on its own event
loop, binding the same UDP and HTTP ports with SO_REUSEPORT. On each RADIUS port a classic BPF
filter on the socket group (quotad.radius.reuseport) hands a datagram to worker *Identifier mod
N*, so even a gateway that sends from one socket is served by every worker, and a retransmission
(same Identifier) reaches the worker that holds the cached reply (RFC 5080 works per worker).
Where the filter cannot be attached, the kernel's hash of source address and port spreads them,
with a warning logged. HTTP and RadSec connections are spread by the kernel. The speed-change
compare-and-set in Redis makes exactly one worker send each CoA. Prometheus runs in multiprocess
mode: /metrics from any worker adds all workers up.

A worker that dies is replaced (at most 5 restarts a minute, then the supervisor stops all).
SIGTERM/SIGINT to the supervisor is passed to the workers, which answer what they have in
progress and exit; then the embedded Redis is stopped.

SIGHUP to the supervisor reloads the configuration (quotad.reload): the supervisor reads and
checks the file once, then sends the configuration in effect to every worker over a socket pair
made at fork, and waits (bounded) for each to confirm it has applied it; then it logs the one
`config_reload` line and counts the reload. Every worker takes the same configuration, and a
worker started later (a replacement) starts with it. Workers ignore SIGHUP themselves.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from quotad import reload
from quotad.config import Config

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# Blocked across a fork: neither stopping nor a reload may see a child half made.
_FORK_SIGNALS = _STOP_SIGNALS | {signal.SIGHUP}


def prepare_multiprocess_metrics() -> Path:
    """Must run before anything imports prometheus_client."""
    directory = metrics_directory()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def metrics_directory(memory_backed: tuple[Path, ...] = (Path("/dev/shm"),)) -> Path:
    """A fresh directory for the workers' metric files: in memory (tmpfs) where possible.

    Every worker maps its metric files and writes them on each request. On a disk-backed /tmp
    the kernel writes those pages back, and a page under writeback cannot be written: while
    Redis rewrote its append-only file (heavy disk I/O), both workers' loops stalled 20-50 ms
    (measured; none over 15 ms with the files on /dev/shm). Falls back to the temporary
    directory when no memory-backed one is writable.
    """
    for base in memory_backed:
        if base.is_dir() and os.access(base, os.W_OK | os.X_OK):
            with contextlib.suppress(OSError):
                return Path(tempfile.mkdtemp(prefix="quotad-metrics-", dir=base))
    return Path(tempfile.mkdtemp(prefix="quotad-metrics-"))


def _worker(config: Config, index: int, control: socket.socket) -> None:
    import asyncio

    import uvloop

    from quotad import app, log

    log.setup(config.server.log_level)
    log.get("quotad.workers").info("worker_started", index=index, pid=os.getpid())
    # The process ends right after: no loop teardown that could wait on a stuck task.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(app.run(config, control=control))


class Supervisor:
    # How long a reload waits for the workers to confirm (a worker still starting confirms once
    # it has started; one that does not in time is named by the log line's count).
    confirm_seconds = 10.0

    def __init__(self, config: Config, workers: int, metrics_dir: Path, path: str | None = None):
        self.config = config  # as the file gives it; workers get spawn_config
        self.spawn_config = config
        self.workers = workers
        self.metrics_dir = metrics_dir
        self.path = path
        self.children: dict[int, int] = {}  # pid → worker index
        self.channels: dict[int, socket.socket] = {}  # pid → the supervisor's end of its channel
        self.stopping = False
        self.restarts: list[float] = []
        self.reloader: reload.Reloader | None = None
        self._sequence = 0
        self._reloading = False
        self._reload_again = False
        self.embedded: Any = None  # quota.embedded.EmbeddedRedis, when no Redis URL is configured

    def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        # Signals stay blocked across the fork: one arriving before the child drops the
        # supervisor's handlers would otherwise be lost, and the child would never stop (or would
        # reload as if it were the supervisor); a reload waits until the child is registered.
        signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_SIGNALS)
        pid = os.fork()
        if pid == 0:  # child
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads come from the supervisor
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORK_SIGNALS)
            code = 0
            try:
                ours.close()
                for other in self.channels.values():
                    other.close()
                _worker(self.spawn_config, index, theirs)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.children[pid] = index
        self.channels[pid] = ours
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORK_SIGNALS)

    def _forward(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def run(self) -> int:
        from quotad import app, log
        from quotad.quota.embedded import EmbeddedRedis

        _log = log.get("quotad.workers")
        embedded = None
        self.reloader = reload.Reloader(self.path, self.config, app.validate)
        signal.signal(signal.SIGHUP, self._on_sighup)
        if not self.config.redis.url:
            embedded = EmbeddedRedis(
                data_dir=Path(self.config.redis.data_dir).resolve(), appendfsync=self.config.redis.appendfsync
            )
            url = embedded.start()
            self.embedded = embedded
            # A reload meanwhile merged into spawn_config; the URL never reloads.
            self.spawn_config = replace(self.spawn_config, redis=replace(self.spawn_config.redis, url=url))
            _log.info("embedded_redis_started", data_dir=str(embedded.data_dir), appendfsync=embedded.appendfsync)
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        # The supervisor serves nothing: its own copies of the live gauges (0 since import) must not
        # count, or quotad_redis_up, the minimum over live processes, would read 0 for ever.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
        try:
            for index in range(self.workers):
                self._spawn(index)
            if reload.take_held():
                self._on_sighup(signal.SIGHUP, None)
            return self._wait(_log)
        finally:
            if embedded is not None:
                embedded.stop()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _wait(self, _log: Any) -> int:
        from prometheus_client import multiprocess

        from quotad import metrics

        status = 0
        while self.children:
            try:
                pid, code = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if self.embedded is not None and self.embedded.process is not None and pid == self.embedded.process.pid:
                # os.wait reaped the embedded Redis: it died. Started again here, on this thread
                # (the kernel's parent-death signal follows the thread that forked it).
                self.embedded.process.returncode = os.waitstatus_to_exitcode(code)
                if not self.stopping and not self.embedded.restart_after(self.embedded.process.returncode):
                    status = 1
                    self._forward(signal.SIGTERM, None)
                continue
            index = self.children.pop(pid, None)
            channel = self.channels.pop(pid, None)
            if channel is not None:
                channel.close()
            multiprocess.mark_process_dead(pid)
            if index is None or self.stopping:
                continue
            _log.warning("worker_died", index=index, pid=pid, status=code)
            if not self._may_restart():
                _log.error("workers_failing", restarts=len(self.restarts))
                status = 1
                self._forward(signal.SIGTERM, None)
                continue
            metrics.WORKER_RESTARTS.inc()
            self._spawn(index)
        return status

    # --- reload (SIGHUP) -----------------------------------------------------------------

    def _on_sighup(self, _signum: int, _frame: Any) -> None:
        """Reload in the signal handler (the supervisor's main thread otherwise only waits for
        children). A SIGHUP during a reload makes one more reload after it, not a nested one."""
        if self.stopping:
            return
        if self._reloading:
            self._reload_again = True
            return
        self._reloading = True
        try:
            again = True
            while again and not self.stopping:
                self._reload_again = False
                self._reload_once()
                again = self._reload_again
        finally:
            self._reloading = False

    def _reload_once(self) -> None:
        from quotad import log

        assert self.reloader is not None
        previous = self.reloader.running.server.log_level
        result = self.reloader.reload()
        if not result.applies:
            self.reloader.report(result, workers=len(self.children))
            return
        self.config = result.config
        self.spawn_config = reload.merge(self.spawn_config, result.config)
        if result.config.server.log_level != previous:
            log.setup(result.config.server.log_level)
        confirmed = self._push(result.config)
        self.reloader.report(result, workers=confirmed)

    def _push(self, config: Config) -> int:
        """Send ``config`` to every worker; how many confirmed having applied it in time."""
        self._sequence += 1
        data = reload.frame(self._sequence, config)
        deadline = time.monotonic() + self.confirm_seconds
        waiting: dict[socket.socket, bytearray] = {}
        for channel in list(self.channels.values()):
            try:
                channel.settimeout(max(0.001, deadline - time.monotonic()))
                channel.sendall(data)
                waiting[channel] = bytearray()
            except OSError:
                continue  # a worker that died; it is replaced with this configuration
        confirmed = 0
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            readable, _, _ = select.select(list(waiting), [], [], remaining)
            for channel in readable:
                try:
                    chunk = channel.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    del waiting[channel]
                    continue
                buffer = waiting[channel]
                buffer += chunk
                acks = [reload.ACK.unpack_from(buffer, i)[0] for i in range(0, len(buffer) - 3, reload.ACK.size)]
                del buffer[: len(buffer) - len(buffer) % reload.ACK.size]
                if self._sequence in acks:  # older ones: late answers to a reload that timed out
                    confirmed += 1
                    del waiting[channel]
        return confirmed

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        return len(self.restarts) <= 5
