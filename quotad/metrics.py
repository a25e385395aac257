"""Every Prometheus metric quotad exports, defined once, here.

Names follow Prometheus conventions (``quotad_`` prefix, ``_total`` counters, base units).
No label carries a per-SIM value: label sets are small and fixed, so a million SIMs do not make
a million series. Hot-path code takes pre-bound children (``labels()`` once, ``inc()`` per packet).

In one process (``server.workers`` = 1) counters and histograms count in plain Python numbers and
hand them to prometheus_client when they are read (a scrape, ``REGISTRY.get_sample_value``; a
child's private ``_value`` lags until then), so a read always sees every increment: an increment
costs ~1 k instructions instead of 4.6 k, an observation ~2.5 k instead of 9.5 k
(docs/benchmarks.md, fifth round). With several workers each increment is written through to
prometheus_client's shared files as before, so a scrape served by any worker sees every worker's
counts at once.
"""

from __future__ import annotations

import gc
import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.samples import Sample

REGISTRY = CollectorRegistry(auto_describe=True)

# With several worker processes (server.workers > 1) the supervisor sets PROMETHEUS_MULTIPROC_DIR
# before anything imports prometheus_client; each worker then writes its values to files there,
# and /metrics, whichever worker serves it, adds all workers up.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _PlainCounter(prometheus_client.Counter):
    """A Counter whose children add to a plain number, handed over when the metric is read."""

    _pending: float

    def _metric_init(self) -> None:
        super()._metric_init()
        self._pending = 0

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        if amount < 0 or exemplar:  # prometheus_client's checks and exemplars
            super().inc(amount, exemplar)
            return
        try:
            self._pending += amount
        except AttributeError:  # the labelled parent, not a child: prometheus_client's error
            super().inc(amount, exemplar)

    def reset(self) -> None:
        self._pending = 0
        super().reset()

    def _child_samples(self) -> Iterable[Sample]:
        pending = self._pending
        if pending:
            self._pending = 0
            super().inc(pending)
        return super()._child_samples()


class _PlainHistogram(prometheus_client.Histogram):
    """A Histogram whose children count each bucket in a plain list, handed over when read."""

    _pending_counts: list[int]
    _pending_sum: float

    def _metric_init(self) -> None:
        super()._metric_init()
        self._pending_counts = [0] * len(self._upper_bounds)
        self._pending_sum = 0.0

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        if exemplar or amount != amount:  # exemplars, NaN: prometheus_client's own way
            super().observe(amount, exemplar)
            return
        try:  # the first bucket whose upper bound is >= amount, as prometheus_client's loop finds it
            self._pending_counts[bisect_left(self._upper_bounds, amount)] += 1
        except AttributeError:  # the labelled parent, not a child: prometheus_client's error
            super().observe(amount, exemplar)
            return
        self._pending_sum += amount

    def _child_samples(self) -> Iterable[Sample]:
        counts = self._pending_counts
        if any(counts):
            for i, count in enumerate(counts):
                if count:
                    self._buckets[i].inc(count)
                    counts[i] = 0
            self._sum.inc(self._pending_sum)
            self._pending_sum = 0.0
        return super()._child_samples()


Counter: Any = prometheus_client.Counter if MULTIPROCESS else _PlainCounter
Histogram: Any = prometheus_client.Histogram if MULTIPROCESS else _PlainHistogram


def exposition() -> bytes:
    """The text /metrics serves: this process's metrics, or every worker's in multiprocess mode."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

RADIUS_REQUESTS = Counter(
    "quotad_radius_requests_total",
    "RADIUS requests answered, by request kind (access, accounting, status: Status-Server) and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
RADIUS_LATENCY = Histogram(
    "quotad_radius_request_duration_seconds",
    "Time from a request's arrival to its reply, by request kind.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RADIUS_DROPS = Counter(
    "quotad_radius_dropped_total",
    "RADIUS datagrams dropped without an answer, by reason.",
    ["reason"],
    registry=REGISTRY,
)
RADIUS_MALFORMED = Counter(
    "quotad_radius_malformed_total",
    "Malformed RADIUS datagrams dropped (also in quotad_radius_dropped_total{reason=\"malformed\"}), by what was "
    "wrong: short (under 20 octets), length (Length field under 20, over 4096 or past the datagram), attribute "
    "(an attribute length under 2 or past the Length field).",
    ["cause"],
    registry=REGISTRY,
)
RADSEC_CLOSED = Counter(
    "quotad_radsec_closed_total",
    "RadSec connections quotad closed, by reason: unknown_client (the certificate names no gateway), overload "
    "(too many connections), malformed and bad_authenticator (a packet RADIUS says to discard silently, which on a "
    "stream means closing it, RFC 6613 §2.6; the packet is also in quotad_radius_dropped_total).",
    ["reason"],
    registry=REGISTRY,
)
RADIUS_REJECTS = Counter(
    "quotad_radius_rejects_total",
    "Access-Rejects sent, by reason.",
    ["reason"],
    registry=REGISTRY,
)
RADIUS_DUPLICATES = Counter(
    "quotad_radius_duplicates_total",
    "Retransmissions recognised (RFC 5080), by what was done: resent the cached reply or dropped while in progress.",
    ["action"],
    registry=REGISTRY,
)
RADIUS_INFLIGHT = Gauge(
    "quotad_radius_inflight_requests",
    "Requests being processed now (sampled every second).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
ACCOUNTING_OCTETS = Counter(
    "quotad_accounting_octets_total",
    "Usage counted from accounting reports, by where it went (high-speed debit, low-speed, overrun, exempt).",
    ["kind"],
    registry=REGISTRY,
)
ACCOUNTING_NOT_COUNTED = Counter(
    "quotad_accounting_not_counted_total",
    "Accounting reports acknowledged but not counted, by reason: stale (older than the session's latest "
    "report), ended (of an ended session), too_old (older than session records are kept), implausible "
    "(more than the session could carry, refused whole).",
    ["reason"],
    registry=REGISTRY,
)
SESSIONS_ENDED = Counter(
    "quotad_sessions_ended_total",
    "Live sessions ended without a Stop, by why: gateway_restart (Accounting-On/Off), gateway_lost "
    "(a CoA/Disconnect answered with Error-Cause 503, session context not found).",
    ["why"],
    registry=REGISTRY,
)
SLICES = Counter(
    "quotad_slices_granted_total",
    "Slices drawn from contract pools (R-12).",
    registry=REGISTRY,
)
SLICE_BYTES = Counter(
    "quotad_slice_bytes_total",
    "Bytes drawn from contract pools as slices (R-12).",
    registry=REGISTRY,
)
SPEED_CHANGES = Counter(
    "quotad_speed_changes_total",
    "Speed class transitions of lines, by new class.",
    ["to"],
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "quotad_redis_errors_total",
    "Redis calls that failed (connection, timeout, script error), by operation.",
    ["op"],
    registry=REGISTRY,
)
REDIS_CLUSTER_CONNECTION_LOST = Counter(
    "quotad_redis_cluster_connection_lost_total",
    "Redis Cluster calls whose connection redis-py closed under them during a failover (its AttributeError); each "
    "is also a Redis error (quotad_redis_errors_total) and the gateway's retry is served afresh.",
    registry=REGISTRY,
)
REDIS_LATENCY = Histogram(
    "quotad_redis_call_duration_seconds",
    "Redis round-trip latency: op=pipeline is the hot path's pipelined client (1 reply in 16 sampled).",
    ["op"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
POOL_BYTES = Gauge(
    "quotad_pool_bytes",
    "Data left in contract pools, by plan (sampled: sums over quotad_contracts_sampled contracts).",
    ["plan"],
    multiprocess_mode="livemostrecent",
    registry=REGISTRY,
)
CONTRACTS_SAMPLED = Gauge(
    "quotad_contracts_sampled",
    "Contracts the last pool sample covered, by plan (all of them below the sample limit).",
    ["plan"],
    multiprocess_mode="livemostrecent",
    registry=REGISTRY,
)
LINES_BY_SPEED = Gauge(
    "quotad_lines_by_speed",
    "Lines by their current speed class (high, low, restricted, or none yet), sampled with the pools.",
    ["speed"],
    multiprocess_mode="livemostrecent",
    registry=REGISTRY,
)
WORKER_RESTARTS = Counter(
    "quotad_worker_restarts_total",
    "Worker processes that died and were replaced by the supervisor (server.workers > 1).",
    registry=REGISTRY,
)
EMBEDDED_REDIS_RESTARTS = Counter(
    "quotad_embedded_redis_restarts_total",
    "Times the embedded Redis died (killed, OOM killer, crash) and quotad started it again on its data directory.",
    registry=REGISTRY,
)
CONFIG_RELOADS = Counter(
    "quotad_config_reloads_total",
    "Configuration reloads (SIGHUP), by outcome: ok (every change in effect), unchanged (the file is the running "
    "configuration), restart_required (the reloadable changes in effect; others wait for a restart), invalid (the "
    "file was refused; nothing changed).",
    ["outcome"],
    registry=REGISTRY,
)
REDIS_UP = Gauge(
    "quotad_redis_up",
    "1 when the last Redis health check succeeded.",
    multiprocess_mode="livemin",
    registry=REGISTRY,
)

# --- the Japan-midnight speed walk (quotad/speedtimer.py; R-24 with) ----------
SPEED_TIMER_LINES = Counter(
    "quotad_speed_timer_lines_total",
    "Lines with live sessions whose speed the Japan-midnight walk re-decided.",
    registry=REGISTRY,
)
SPEED_TIMER_CHANGES = Counter(
    "quotad_speed_timer_changes_total",
    "Speed changes the Japan-midnight walk made (each queues a CoA to the line's sessions), by new class.",
    ["to"],
    registry=REGISTRY,
)
SPEED_TIMER_DONE = Gauge(
    "quotad_speed_timer_done_timestamp_seconds",
    "The latest Japan midnight (epoch) whose walk has completed, by any process (read from Redis at each check).",
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
SPEED_TIMER_WALK_SECONDS = Gauge(
    "quotad_speed_timer_walk_seconds",
    "How long the last walk this process made took, pacing included.",
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
# --- end the Japan-midnight speed walk --------------------------------------------------------

# --- CoA / Disconnect client (quotad/radius/coa.py) -----------------------
# One outcome per request: ack, nak, timeout, dropped_queue_full, error. Replies that cannot be
# matched or verified are not request outcomes; they are counted apart, by reason.

_COA_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

COA_REQUESTS = Counter(
    "quotad_coa_requests_total",
    "CoA-Requests and Disconnect-Requests finished, by kind (coa, disconnect) and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
COA_RETRIES = Counter(
    "quotad_coa_retries_total",
    "CoA-Request and Disconnect-Request retransmissions, by kind.",
    ["kind"],
    registry=REGISTRY,
)
COA_DURATION = Histogram(
    "quotad_coa_duration_seconds",
    "Time from a CoA or Disconnect request's start to its ACK, NAK or timeout, by kind.",
    ["kind"],
    buckets=_COA_BUCKETS,
    registry=REGISTRY,
)
SPEED_PUSH_PENDING = Gauge(
    "quotad_speed_push_pending",
    "Lines whose speed change waits to be pushed to their sessions (sampled every second).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
COA_QUEUE_DEPTH = Gauge(
    "quotad_coa_queue_depth",
    "CoA and Disconnect requests outstanding: sent and awaiting a reply, or awaiting an Identifier.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
COA_BAD_REPLIES = Counter(
    "quotad_coa_bad_replies_total",
    "Datagrams on the CoA socket ignored, by reason (unknown source, malformed, unmatched, bad authenticator).",
    ["reason"],
    registry=REGISTRY,
)
# --- end CoA / Disconnect client ------------------------------------------------------------
# --- identity verification (R-50, R-51) -----------------------------------------------------
IDENTITY_OUTCOMES = Counter(
    "quotad_identity_outcomes_total",
    "Identity submissions and withdrawals, by outcome (verified, refused, revoked) and refusal code (R-51).",
    ["outcome", "code"],
    registry=REGISTRY,
)
# --- end identity verification --------------------------------------------------------------
# --- the process ----------------------------------------------------------------------------
GC_PAUSES = Histogram(
    "quotad_gc_pause_seconds",
    "Collections of Python's cyclic garbage collector, by generation (2: a full collection), and "
    "how long each held the process: requests arriving meanwhile wait.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
    registry=REGISTRY,
)
_gc_timed = False


def time_gc_pauses() -> None:
    """Time every collection into ``quotad_gc_pause_seconds`` (once a process). A collection runs
    a few times a second under load and a full one every few seconds: a callback each costs
    nothing measurable, and a pause in the tail of the request latency can be told from Redis's."""
    global _gc_timed
    if _gc_timed:
        return
    _gc_timed = True
    by_generation = [GC_PAUSES.labels(str(generation)) for generation in range(3)]
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
