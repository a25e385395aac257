"""The soak test (a documented benchmark, not run in CI): quotad under a fixed offered load for a
long time, watching for leaks and drift.

Starts `quotad serve` (``--workers`` processes, embedded Redis with AOF) on free loopback ports,
provisions ``--lines`` simulated lines, builds bench/radload.c and runs it open loop at
``--rate`` requests/s for ``--minutes``, in back-to-back segments of ``--segment`` seconds. After
each segment it records the segment's throughput, timeouts and errors, p50/p99/p99.9 latency, and
the resident memory (VmRSS) of quotad's processes and of Redis, and from quotad's /metrics the
segment's speed changes and CoA/Disconnect requests (what a tail in that segment may come from).
``--kind mixed`` runs PAP and accounting generators side by side at half the rate each.

The report compares the end with the start: the first segment is warm-up (caches, the reply
cache filling to its window, Redis growing its keyspace), so growth is measured from the end of
the second segment. After the warm-up, ``--reference-runs`` short runs of 10 s at the same rate
give the short-run p99 (their median) that every later segment is judged against; with 0 the
second segment's p99 is the reference instead. Verdict: zero errors and timeouts, quotad RSS
growth under ``--max-growth-mb``, every segment's p99 within 2x the reference. Exit status 1 if
the verdict fails.

    .venv/bin/python -m simulators.soak --minutes 10 --rate 5000 --kind mixed
    .venv/bin/python -m simulators.soak --minutes 10 --rate 0 --kind mixed   # at half the measured max
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from simulators.bench import RADLOAD_SRC, Quotad, build_radload, cpu_seconds, provision


def rss_kib(pids: list[int]) -> int:
    """Sum of VmRSS (KiB) of these processes."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def counters(q: Quotad) -> dict[str, float]:
    """Totals from quotad's /metrics that explain a segment's tail: speed changes (each may push
    CoA-Requests) and CoA/Disconnect requests by outcome."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{q.http}/metrics", timeout=5).read().decode()
    totals = {"speed_changes": 0.0, "coa_requests": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name == "quotad_speed_changes_total":
            totals["speed_changes"] += float(line.rsplit(" ", 1)[1])
        elif name == "quotad_coa_requests_total":
            totals["coa_requests"] += float(line.rsplit(" ", 1)[1])
    return totals


def radload_cmd(radload: Path, q: Quotad, kind: str, seconds: float, rate: float, lines: int) -> list[str]:
    """Open loop at ``rate`` (window 512), or closed loop at window 128 (the benchmark's) for rate 0."""
    port = q.acct if kind == "acct" else q.auth
    window = "512" if rate > 0 else "128"
    return [str(radload), "-p", str(port), "-s", "testing123", "-k", kind, "-d", str(seconds), "-w", window,
            "-n", "8", "-m", str(lines), "-r", str(int(rate)), "-t", "2000"]


def measure_max(radload: Path, q: Quotad, kinds: list[str], lines: int, runs: int = 3, seconds: float = 10.0) -> float:
    """The maximum throughput of this quotad for these kinds: closed loop, median of ``runs``."""
    totals = sorted(segment(radload, q, kinds, seconds, 0, lines)["rps"] for _ in range(runs))
    return float(totals[len(totals) // 2])


def segment(radload: Path, q: Quotad, kinds: list[str], seconds: float, rate: float, lines: int) -> dict[str, Any]:
    """One segment: the generators side by side; their results merged (latencies: the worst kind's)."""
    quotad_pids, redis_pids = q.pids()
    cpu_before = cpu_seconds(quotad_pids)
    counted = counters(q)
    procs = [subprocess.Popen(radload_cmd(radload, q, kind, seconds, rate / len(kinds), lines),
                              stdout=subprocess.PIPE, text=True) for kind in kinds]
    results = [json.loads(p.communicate()[0]) for p in procs]
    quotad_pids, redis_pids = q.pids()
    now = counters(q)
    return {
        "rps": round(sum(r["rps"] for r in results)),
        "sent": sum(r["sent"] for r in results),
        "timeouts": sum(r["timeouts"] for r in results),
        "errors": sum(r["bad_auth"] + r["bad_ma"] + r["send_err"] + r["other"] + r["reject"] for r in results),
        "p50_ms": max(r["p50_us"] for r in results) / 1000,
        "p99_ms": max(r["p99_us"] for r in results) / 1000,
        "p999_ms": max(r["p999_us"] for r in results) / 1000,
        "quotad_rss_mb": round(rss_kib(quotad_pids) / 1024, 1),
        "redis_rss_mb": round(rss_kib(redis_pids) / 1024, 1),
        "quotad_cpu": round((cpu_seconds(quotad_pids) - cpu_before) / seconds, 2),
        **{name: round(now[name] - counted[name]) for name in now},
    }


def verdict(rows: list[dict[str, Any]], max_growth_mb: float, reference_p99: float | None = None) -> dict[str, Any]:
    """The first row is warm-up: counted for errors, not judged. The p99 reference is the short
    runs' (``reference_p99``), else the second row's."""
    ref = rows[1] if len(rows) > 1 else rows[0]
    ref_p99 = reference_p99 if reference_p99 is not None else ref["p99_ms"]
    growth = rows[-1]["quotad_rss_mb"] - ref["quotad_rss_mb"]
    worst_p99 = max(r["p99_ms"] for r in rows[1:] or rows)
    errors = sum(r["errors"] + r["timeouts"] for r in rows)
    return {
        "requests": sum(r["sent"] for r in rows),
        "errors_and_timeouts": errors,
        "quotad_rss_start_mb": ref["quotad_rss_mb"], "quotad_rss_end_mb": rows[-1]["quotad_rss_mb"],
        "quotad_rss_growth_mb": round(growth, 1),
        "redis_rss_start_mb": ref["redis_rss_mb"], "redis_rss_end_mb": rows[-1]["redis_rss_mb"],
        "p99_reference_ms": ref_p99, "p99_worst_ms": worst_p99,
        "p99_ratio": round(worst_p99 / ref_p99, 2) if ref_p99 else None,
        "ok": errors == 0 and growth < max_growth_mb and worst_p99 <= 2 * ref_p99,
    }


def short_run_p99(radload: Path, q: Quotad, kinds: list[str], rate: float, lines: int, runs: int = 3,
                  seconds: float = 10.0) -> float:
    """The short-run value the soak is judged against: p99 at the soak's rate, median of ``runs``."""
    p99s = sorted(segment(radload, q, kinds, seconds, rate, lines)["p99_ms"] for _ in range(runs))
    return float(p99s[len(p99s) // 2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0,
                        help="offered requests/s (all generators); 0: half the maximum, measured first")
    parser.add_argument("--kind", choices=["pap", "chap", "acct", "mixed"], default="mixed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--segment", type=float, default=30.0, help="seconds per sample")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--reference-runs", type=int, default=3,
                        help="short runs (10 s, at the soak's rate, after warm-up) whose median p99 is the "
                             "reference; 0: the second segment's p99")
    parser.add_argument("--radload", type=Path, help="a built radload (default: build bench/radload.c)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.radload is None and (not RADLOAD_SRC.exists() or shutil.which("gcc") is None):
        print(f"soak skipped: needs gcc and {RADLOAD_SRC}, or --radload")
        return 0
    kinds = ["pap", "acct"] if args.kind == "mixed" else [args.kind]
    workdir = Path(tempfile.mkdtemp(prefix="quotad-soak-"))
    q = Quotad(workdir, args.workers)
    rows: list[dict[str, Any]] = []
    try:
        radload = args.radload.resolve() if args.radload else build_radload(workdir)
        q.start()
        provision(q, args.lines)
        measured_max = None
        if args.rate <= 0:
            measured_max = measure_max(radload, q, kinds, args.lines)
            args.rate = round(measured_max / 2)
            if not args.json:
                print(f"measured maximum {measured_max:.0f} req/s (closed loop, median of 3 x 10 s): "
                      f"soak at {args.rate:.0f} req/s", flush=True)
        reference = None
        segments = max(2, round(args.minutes * 60 / args.segment))
        started = time.monotonic()
        for i in range(segments):
            if i == 1 and args.reference_runs:
                reference = short_run_p99(radload, q, kinds, args.rate, args.lines, args.reference_runs)
                if not args.json:
                    print(f"short-run p99 at {args.rate:.0f} req/s: {reference} ms "
                          f"(median of {args.reference_runs} x 10 s, after the warm-up segment)", flush=True)
            row = {"t_s": round(time.monotonic() - started),
                   **segment(radload, q, kinds, args.segment, args.rate, args.lines)}
            rows.append(row)
            if not args.json:
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            if q.proc is None or q.proc.poll() is not None:
                raise RuntimeError(f"quotad exited during segment {i}")
    finally:
        q.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result = verdict(rows, args.max_growth_mb, reference)
    summary = {"minutes": args.minutes, "measured_max": measured_max, "rate": args.rate, "kind": args.kind,
               "workers": args.workers, "lines": args.lines, **result}
    print(json.dumps({"summary": summary, "segments": rows} if args.json else summary), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
