"""Several worker processes on the same ports (``server.workers`` > 1).

One Python process uses one core; a gateway fleet wants more. The supervisor starts the embedded
Redis (if no URL is configured) once, then forks N workers, each a whole daemon on its own event
loop, binding the same UDP and HTTP ports with SO_REUSEPORT. The kernel spreads datagrams by
their 4-tuple, so a gateway's retransmission (same source address and port) reaches the worker
that holds the cached reply (RFC 5080 works per worker). The speed-change compare-and-set in
Redis makes exactly one worker send each CoA. Prometheus runs in multiprocess mode: /metrics from
any worker adds all workers up.

A worker that dies is replaced (at most 5 restarts a minute, then the supervisor stops all).
SIGTERM/SIGINT to the supervisor is passed to the workers, which answer what they have in
progress and exit; then the embedded Redis is stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from quotad.config import Config

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


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


def _worker(config: Config, index: int) -> None:
    import asyncio

    import uvloop

    from quotad import app, log

    log.setup(config.server.log_level)
    log.get("quotad.workers").info("worker_started", index=index, pid=os.getpid())
    # The process ends right after: no loop teardown that could wait on a stuck task.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(app.run(config))


class Supervisor:
    def __init__(self, config: Config, workers: int, metrics_dir: Path):
        self.config = config
        self.workers = workers
        self.metrics_dir = metrics_dir
        self.children: dict[int, int] = {}  # pid → worker index
        self.stopping = False
        self.restarts: list[float] = []

    def _spawn(self, config: Config, index: int) -> None:
        # Signals stay blocked across the fork: one arriving before the child drops the
        # supervisor's handlers would otherwise be lost, and the child would never stop.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # child
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            code = 0
            try:
                _worker(config, index)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        self.children[pid] = index
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def _forward(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def run(self) -> int:
        from quotad import log
        from quotad.quota.embedded import EmbeddedRedis

        _log = log.get("quotad.workers")
        embedded = None
        config = self.config
        if not config.redis.url:
            embedded = EmbeddedRedis(
                data_dir=Path(config.redis.data_dir).resolve(), appendfsync=config.redis.appendfsync
            )
            url = embedded.start()
            config = replace(config, redis=replace(config.redis, url=url))
            _log.info("embedded_redis_started", data_dir=str(embedded.data_dir), appendfsync=embedded.appendfsync)
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        # The supervisor serves nothing: its own copies of the live gauges (0 since import) must not
        # count, or quotad_redis_up, the minimum over live processes, would read 0 for ever.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
        try:
            for index in range(self.workers):
                self._spawn(config, index)
            return self._wait(config, _log)
        finally:
            if embedded is not None:
                embedded.stop()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _wait(self, config: Config, _log: Any) -> int:
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
            index = self.children.pop(pid, None)
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
            self._spawn(config, index)
        return status

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        return len(self.restarts) <= 5
