"""``quotad-sim load``: several generator processes (simulators/loadgen.py), a live progress line,
and one report: requests/s achieved, latency percentiles, outcomes and errors by request kind.

Closed loop (``--window W``: W requests in flight across the processes) measures capacity; open
loop (``--rate R``: R requests/s offered, still at most W in flight) measures latency at a given
load. The mix (``--mix pap=60,chap=10,acct=30``; ``auth`` means PAP) is a fixed interleaving, so
two runs send the same sequence of kinds.
"""

from __future__ import annotations

import array
import math
import multiprocessing
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from simulators.loadgen import KINDS, SLOTS, WorkerSpec, worker_main

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class LoadError(ValueError):
    """A bad load argument; the message says which."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    host: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    secret: bytes = b"testing123"
    mix: tuple[tuple[str, int], ...] = (("pap", 1),)
    rate: float = 0.0  # offered requests/s in total; 0 = closed loop
    window: int = 128  # in flight in total
    duration: float = 10.0
    lines: int = 10000
    processes: int = 2
    timeout: float = 2.0


@dataclass(slots=True)
class LoadReport:
    spec: LoadSpec
    elapsed: float
    sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)  # "<kind>:<Reply-Message>"
    latency_us: list[int] = field(default_factory=list)  # sorted
    cpu: float = 0.0  # CPU seconds of all generator processes

    @property
    def answered(self) -> int:
        return sum(v for k, v in self.outcomes.items() if not k.endswith(":timeout"))

    @property
    def timeouts(self) -> int:
        return sum(v for k, v in self.outcomes.items() if k.endswith(":timeout"))

    def rps(self) -> float:
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> int:
        """Latency percentile in µs (nearest rank); 0 without replies."""
        if not self.latency_us:
            return 0
        rank = max(0, math.ceil(round(q / 100 * len(self.latency_us), 9)) - 1)
        return self.latency_us[rank]

    def by_kind(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for kind, n in self.sent.items():
            row = {"sent": n}
            for key, value in self.outcomes.items():
                k, outcome = key.split(":", 1)
                if k == kind:
                    row[outcome] = value
            table[kind] = row
        return table

    def as_dict(self) -> dict[str, Any]:
        s = self.spec
        return {
            "mode": "open" if s.rate else "closed", "rate_offered": s.rate, "window": s.window,
            "duration_s": s.duration, "processes": s.processes, "lines": s.lines,
            "mix": dict(s.mix), "elapsed_s": round(self.elapsed, 3), "sent": sum(self.sent.values()),
            "answered": self.answered, "rps": round(self.rps(), 1), "timeouts": self.timeouts,
            "generator_cpu_s": round(self.cpu, 2),
            "errors": dict(self.errors), "by_kind": self.by_kind(), "rejects": self.rejects_by_message(),
            "latency_us": {f"p{q:g}": self.percentile(q) for q in PERCENTILES},
            "warnings": warnings(self),
        }

    def rejects_by_message(self) -> dict[str, int]:
        """Access-Rejects by their Reply-Message, all kinds together, most first."""
        by: Counter[str] = Counter()
        for key, n in self.rejects.items():
            by[key.split(":", 1)[1]] += n
        return dict(by.most_common())


UNKNOWN_SIM = "Unknown SIM"  # quotad's Reply-Message for a SIM it has no line of (quotad/aaa/access.py)


def warnings(report: LoadReport) -> list[str]:
    """What makes the run's figures not the measurement asked for, and what to do about it.

    Every line ``--lines N`` sends to must exist in quotad: an Access-Reject "Unknown SIM" means
    some do not (`quotad demo` holds 5 lines, not 8190xxxxxxxx below N), so the figures measure
    rejects of unknown SIMs, not attaches."""
    unknown = report.rejects_by_message().get(UNKNOWN_SIM, 0)
    if not unknown:
        return []
    access = sum(v for k, v in report.outcomes.items()
                 if k.split(":", 1)[0] in ("pap", "chap") and not k.endswith(":timeout"))
    lines = report.spec.lines
    return [
        f'{unknown:,} of {access:,} Access-Requests answered ({unknown / max(access, 1):.0%}) were rejected '
        f'"{UNKNOWN_SIM}": quotad has no line for some of the MSISDNs 819000000000…8190{lines - 1:08d} that '
        f"--lines {lines} sends to, so these figures measure rejects, not attaches. Create the lines first: "
        f"quotad-sim provision --lines {lines} (in the directory `quotad demo` runs in; else add --config FILE "
        "or --redis URL of the quotad under test), then run the load again."
    ]


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    """``pap=60,chap=10,acct=30`` (``auth`` = pap) → ((kind, weight), …); weights are whole numbers."""
    weights: Counter[str] = Counter()
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = "pap" if name.strip() == "auth" else name.strip()
        if name not in KINDS:
            raise LoadError(f"--mix: unknown kind {name!r} (pap, chap, auth, acct)")
        try:
            weight = int(value) if value else 1
        except ValueError as exc:
            raise LoadError(f"--mix: {name}: weight must be a whole number, got {value!r}") from exc
        if weight < 0:
            raise LoadError(f"--mix: {name}: weight must be ≥ 0")
        weights[name] += weight
    if not sum(weights.values()):
        raise LoadError("--mix: every weight is 0")
    return tuple((k, w) for k, w in weights.items() if w)


def pattern(mix: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    """The mix as an evenly interleaved cycle (smooth weighted round robin), reduced by the GCD."""
    g = 0
    for _, w in mix:
        g = math.gcd(g, w)
    weights = {k: w // g for k, w in mix}
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    out = []
    for _ in range(total):
        for k, w in weights.items():
            current[k] += w
        best = max(current, key=lambda k: current[k])
        current[best] -= total
        out.append(best)
    return tuple(out)


def _worker_specs(spec: LoadSpec) -> list[WorkerSpec]:
    cycle = pattern(spec.mix)
    n = spec.processes
    return [
        WorkerSpec(
            spec.host, spec.auth_port, spec.acct_port, spec.secret, cycle, spec.lines,
            window=max(1, spec.window // n + (1 if i < spec.window % n else 0)),
            rate=spec.rate / n, duration=spec.duration, timeout=spec.timeout, index=i, processes=n,
        )
        for i in range(n)
    ]


def run(spec: LoadSpec, progress: TextIO | None = sys.stderr) -> LoadReport:
    """Run the load (blocking) and merge what every process saw."""
    if spec.processes < 1 or spec.window < 1 or spec.duration <= 0 or spec.lines < 1:
        raise LoadError("processes, window and lines must be ≥ 1, duration > 0")
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold an event loop
    shared = ctx.Array("d", spec.processes * SLOTS, lock=False)
    ready = ctx.Barrier(spec.processes + 1)
    go = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=worker_main, args=(ws, shared, ready, go, results), daemon=True)
             for ws in _worker_specs(spec)]
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=60)
        go.set()
        started = time.monotonic()
        tallies = _collect(spec, shared, results, started, progress)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    return _merge(spec, tallies)


def _collect(
    spec: LoadSpec, shared: Any, results: Any, started: float, progress: TextIO | None
) -> list[dict[str, Any]]:
    tallies: list[dict[str, Any]] = []
    last_print = 0.0
    while len(tallies) < spec.processes:
        try:
            tallies.append(results.get(timeout=0.25)[1])
        except Exception:  # queue.Empty; a dead worker shows as a missing tally after the limit
            if time.monotonic() - started > spec.duration + spec.timeout + 30:
                raise RuntimeError("a load generator process did not report") from None
        now = time.monotonic()
        if progress is not None and now - last_print >= 0.5:
            last_print = now
            _progress(progress, spec, shared, now - started)
    if progress is not None:
        _progress(progress, spec, shared, time.monotonic() - started)
        progress.write("\n" if _tty(progress) else "")
    return tallies


def _tty(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def _progress(stream: TextIO, spec: LoadSpec, shared: Any, elapsed: float) -> None:
    totals = [sum(shared[i * SLOTS + j] for i in range(spec.processes)) for j in range(SLOTS)]
    sent, answered, timeouts, errors = (int(t) for t in totals)
    done = min(1.0, elapsed / spec.duration)
    bar = "#" * int(done * 20) + "-" * (20 - int(done * 20))
    line = (f"[{bar}] {min(elapsed, spec.duration):5.1f}/{spec.duration:g} s  sent {sent:,}  answered {answered:,}"
            f"  {answered / max(elapsed, 1e-9):,.0f}/s  timeouts {timeouts:,}  errors {errors:,}")
    stream.write(("\r" + line) if _tty(stream) else line + "\n")
    stream.flush()


def _merge(spec: LoadSpec, tallies: list[dict[str, Any]]) -> LoadReport:
    report = LoadReport(spec, max(t["elapsed"] for t in tallies))
    latencies = array.array("I")
    for t in tallies:
        report.sent.update(t["sent"])
        report.outcomes.update(t["outcomes"])
        report.errors.update(t["errors"])
        report.rejects.update(t["rejects"])
        report.cpu += t["cpu"]
        latencies.frombytes(t["latency_us"])
    report.latency_us = sorted(latencies)
    return report


def text(report: LoadReport) -> str:
    """The report for a person."""
    s = report.spec
    mode = f"open loop at {s.rate:,.0f}/s offered" if s.rate else "closed loop"
    lines = [
        f"quotad-sim load: {mode}, window {s.window}, {s.processes} processes, {s.lines:,} lines, "
        f"mix {','.join(f'{k}={w}' for k, w in s.mix)}",
        f"  {report.answered:,} answered of {sum(report.sent.values()):,} sent in {report.elapsed:.2f} s: "
        f"{report.rps():,.0f} req/s",
        "  latency " + "  ".join(f"p{q:g} {report.percentile(q) / 1000:.2f} ms" for q in PERCENTILES),
    ]
    for kind, row in report.by_kind().items():
        rest = "  ".join(f"{k} {v:,}" for k, v in row.items() if k != "sent")
        lines.append(f"  {kind:5s} sent {row['sent']:,}  {rest}")
    rejects = report.rejects_by_message()
    if rejects:
        lines.append("  rejects by Reply-Message: " + "  ".join(f'"{m}" {n:,}' for m, n in rejects.items()))
    lines.append(f"  timeouts {report.timeouts:,}  errors {dict(report.errors) or 0}")
    share = report.cpu / report.elapsed if report.elapsed else 0.0
    lines.append(f"  generator CPU {report.cpu:.2f} s ({share:.0%} of one core)")
    lines += [f"WARNING: {w}" for w in warnings(report)]
    return "\n".join(lines)
