"""The throughput benchmark (`make bench`, `make bench-quick` in CI).

Starts quotad (``--workers`` processes, its embedded Redis) on free loopback ports, provisions
``--lines`` simulated lines, builds bench/radload.c (the C generator;
$QUOTAD_RADLOAD_SRC overrides the path) and runs it: closed loop at window 128 for PAP, CHAP
and accounting (median of ``--runs``), then open loop at 10,000 req/s offered for latency. CPU
time of quotad, Redis and the generator is read from /proc for each run, so the report says who
used the two cores, and what each request cost quotad and Redis in CPU microseconds. It
reports; it fails only when a run itself fails (no replies), never on a figure: a loaded CI
machine is noisy.

``--appendfsync always,everysec`` compares the embedded Redis's fsync policies
(``redis.appendfsync``): one daemon for each, started side by side, and every row's runs
alternate between them (A B, then B A, ...), so the machine's own swings fall on both alike;
each row is then the median of ``--runs`` runs per policy, the latency rows included.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quotad.quota.embedded import is_server_name

CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[1]


def radload_source() -> Path:
    """radload.c: $QUOTAD_RADLOAD_SRC, else the repository's own bench/radload.c."""
    env = os.environ.get("QUOTAD_RADLOAD_SRC")
    if env:
        return Path(env)
    return REPO / "bench" / "radload.c"


RADLOAD_SRC = radload_source()


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU seconds of these processes (and their reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = [int(p) for p in out]
    for child in list(found):
        found += children(child)
    return found


def _comm(pid: int) -> str | None:
    """The process's command name, or None if it has exited since it was listed."""
    try:
        return Path(f"/proc/{pid}/comm").read_text(errors="replace")
    except OSError:
        return None


def build_radload(workdir: Path) -> Path:
    binary = workdir / "radload"
    cmd = ["gcc", "-O2", "-Wno-deprecated-declarations", "-o", str(binary), str(RADLOAD_SRC), "-lcrypto"]
    subprocess.run(cmd, check=True, capture_output=True)
    return binary


class Quotad:
    def __init__(self, workdir: Path, workers: int, appendfsync: str = ""):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.auth = free_port(socket.SOCK_DGRAM)
        self.acct = free_port(socket.SOCK_DGRAM)
        self.http = free_port(socket.SOCK_STREAM)
        self.config = workdir / "quotad.toml"
        fsync = f'appendfsync = "{appendfsync}"\n' if appendfsync else ""
        self.config.write_text(
            f'[server]\nworkers = {workers}\nauth_port = {self.auth}\nacct_port = {self.acct}\n'
            f'http_port = {self.http}\nlog_level = "warning"\n[redis]\ndata_dir = "{workdir / "data"}"\n{fsync}'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        quotad = [sys.executable, "-m", "quotad.cli", "serve", "--config", str(self.config)]
        self.proc = subprocess.Popen(quotad, stderr=open(self.workdir / "quotad.log", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/readyz", timeout=1) as r:
                    if json.loads(r.read())["redis"]:
                        time.sleep(0.5)
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("quotad did not become ready; see " + str(self.workdir / "quotad.log"))

    def pids(self) -> tuple[list[int], list[int]]:
        """(quotad processes, redis-server processes)."""
        assert self.proc is not None
        names = {pid: _comm(pid) for pid in [self.proc.pid, *children(self.proc.pid)]}
        live = [pid for pid, name in names.items() if name is not None]  # Redis's AOF rewrite child comes and goes
        redis = [pid for pid in live if is_server_name(names[pid] or "")]
        return [pid for pid in live if pid not in redis], redis

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def provision(q: Quotad, lines: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "simulators.cli", "provision", "--lines", str(lines), "--config", str(q.config)],
        check=True, capture_output=True,
    )


_RUNS = itertools.count(1)


def first_sequence() -> str:
    """radload's -S for a new run: accounting sessions (sequence number / 3) that no earlier run of
    this process used, so a run is not a replay of ended sessions (counted once, then refused)."""
    return str(next(_RUNS) * 300_000_000)


def run_radload(radload: Path, q: Quotad, kind: str, seconds: float, lines: int, rate: int = 0) -> dict[str, Any]:
    port = q.acct if kind == "acct" else q.auth
    cmd = [str(radload), "-p", str(port), "-s", "testing123", "-k", kind, "-d", str(seconds),
           "-w", "128", "-n", "8", "-m", str(lines), "-r", str(rate), "-S", first_sequence()]
    quotad_pids, redis_pids = q.pids()
    before = cpu_seconds(quotad_pids), cpu_seconds(redis_pids)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    result["quotad_cpu_s"] = round(cpu_seconds(quotad_pids) - before[0], 2)
    result["redis_cpu_s"] = round(cpu_seconds(redis_pids) - before[1], 2)
    result["gen_cpu_s"] = round(result["gen_cpu_user_s"] + result["gen_cpu_sys_s"], 2)
    if result["recv"] == 0:
        raise RuntimeError(f"{kind}: no replies")
    return result


def run_quotad_sim(
    q: Quotad, kind: str, seconds: float, lines: int, rate: int = 0, processes: int = 2
) -> dict[str, Any]:
    """The same run with `quotad-sim load` (Python, ``processes`` generator processes) instead of radload."""
    cmd = [sys.executable, "-m", "simulators.cli", "load", "--json", "--quiet", "--mix", f"{kind}=1",
           "--window", "128", "--duration", str(seconds), "--lines", str(lines), "--processes", str(processes),
           "--auth-port", str(q.auth), "--acct-port", str(q.acct)]
    if rate:
        cmd += ["--rate", str(rate)]
    quotad_pids, redis_pids = q.pids()
    before = cpu_seconds(quotad_pids), cpu_seconds(redis_pids)
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    lat = out["latency_us"]
    result: dict[str, Any] = {
        "rps": out["rps"], "recv": out["answered"], "timeouts": out["timeouts"],
        "bad_auth": sum(out["errors"].values()), "bad_ma": 0, "wall_s": out["elapsed_s"],
        "p50_us": lat["p50"], "p99_us": lat["p99"], "p999_us": lat["p99.9"], "gen_cpu_s": out["generator_cpu_s"],
        "quotad_cpu_s": round(cpu_seconds(quotad_pids) - before[0], 2),
        "redis_cpu_s": round(cpu_seconds(redis_pids) - before[1], 2),
    }
    if result["recv"] == 0:
        raise RuntimeError(f"{kind}: no replies")
    return result


def summarize(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]  # the median run
    wall = best["wall_s"]
    return {
        "kind": kind, "rps": round(statistics.median(r["rps"] for r in runs)),
        "timeouts": sum(r["timeouts"] for r in runs), "errors": sum(r["bad_auth"] + r["bad_ma"] for r in runs),
        "p50_us": best["p50_us"], "p99_us": best["p99_us"], "p999_us": best["p999_us"],
        "cpu_quotad": f"{best['quotad_cpu_s'] / wall:.0%}", "cpu_redis": f"{best['redis_cpu_s'] / wall:.0%}",
        "cpu_generator": f"{best['gen_cpu_s'] / wall:.0%}",
        # CPU per answered request: what sizing needs, and steadier than req/s on a shared machine.
        "us_quotad": round(best["quotad_cpu_s"] / best["recv"] * 1e6, 1),
        "us_redis": round(best["redis_cpu_s"] / best["recv"] * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.bench", description=__doc__)
    parser.add_argument("--workers", type=worker_counts, default=[2],
                        help="quotad's server.workers; several, comma-separated (1,2): one daemon each, "
                             "runs alternated between them")
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=10000, help="offered rate of the latency runs")
    parser.add_argument("--generator", choices=("radload", "quotad-sim", "both"), default="radload",
                        help="the load generator: radload (C), quotad-sim load (Python, 2 processes), or both")
    parser.add_argument("--appendfsync", type=policies, default=[""],
                        help="the embedded Redis's redis.appendfsync; several, comma-separated "
                             "(always,everysec): one daemon each, runs alternated between them")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    generators = ("radload", "quotad-sim") if args.generator == "both" else (args.generator,)
    if "radload" in generators and (not RADLOAD_SRC.exists() or shutil.which("gcc") is None):
        print(f"benchmark skipped: needs gcc and {RADLOAD_SRC}")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="quotad-bench-"))
    variants = {variant_label(w, p, args): (w, p) for w in args.workers for p in args.appendfsync}
    compare = len(variants) > 1
    daemons = {label: Quotad(workdir / f"w{w}-{p or 'default'}", w, p) for label, (w, p) in variants.items()}
    try:
        radload = build_radload(workdir) if "radload" in generators else None
        for q in daemons.values():
            q.start()
            provision(q, args.lines)
        rows = []
        for generator in generators:
            def one(q: Quotad, kind: str, rate: int = 0, generator: str = generator) -> dict[str, Any]:
                if generator == "radload":
                    assert radload is not None
                    return run_radload(radload, q, kind, args.seconds, args.lines, rate)
                return run_quotad_sim(q, kind, args.seconds, args.lines, rate)

            tag = "" if generator == "radload" else " (quotad-sim)"
            cases = [(kind, 0, kind) for kind in ("pap", "chap", "acct")]
            cases += [(kind, args.rate, f"{kind}@{args.rate}/s") for kind in ("pap", "acct")]
            for kind, rate, name in cases:
                runs = alternate(daemons, functools.partial(one, kind=kind, rate=rate),
                                 args.runs if rate == 0 or compare else 1)
                for policy, results in runs.items():
                    label = f" [{policy}]" if compare else ""
                    rows.append({**summarize(kind, results), "kind": name + tag + label,
                                 "rps_runs": [round(r["rps"]) for r in results],
                                 "p99_us_runs": [r["p99_us"] for r in results]})
    finally:
        for q in daemons.values():
            q.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows, args)
    return 0


def worker_counts(text: str) -> list[int]:
    """--workers: one count or several, comma-separated."""
    try:
        chosen = [int(w) for w in text.split(",")]
    except ValueError:
        chosen = []
    if not chosen or any(not 1 <= w <= 64 for w in chosen) or len(set(chosen)) != len(chosen):
        raise argparse.ArgumentTypeError(f"one or more worker counts of 1 to 64, each once: {text!r}")
    return chosen


def variant_label(workers: int, policy: str, args: argparse.Namespace) -> str:
    """A daemon's name in the report: what differs between the daemons compared."""
    parts = ([f"{workers} worker{'s' if workers > 1 else ''}"] if len(args.workers) > 1 else []) + (
        [policy] if len(args.appendfsync) > 1 else [])
    return ", ".join(parts)


def policies(text: str) -> list[str]:
    """--appendfsync: one policy or several, comma-separated."""
    from quotad.quota.embedded import APPENDFSYNC

    chosen = [p.strip() for p in text.split(",")]
    bad = [p for p in chosen if p not in APPENDFSYNC]
    if bad or len(set(chosen)) != len(chosen):
        raise argparse.ArgumentTypeError(f"one or more of {', '.join(APPENDFSYNC)}, each once: {text!r}")
    return chosen


def alternate(
    daemons: dict[str, Quotad], run: Callable[[Quotad], dict[str, Any]], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` runs on each daemon, alternated: A B, B A, A B, ... (with one daemon, just the runs)."""
    order = list(daemons)
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in order}
    for i in range(rounds):
        for policy in order if i % 2 == 0 else order[::-1]:
            results[policy].append(run(daemons[policy]))
    return results


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({"workers": workers_text(args), "seconds": args.seconds, "runs": args.runs, "rows": rows}))
        return
    print(f"quotad benchmark: {workers_text(args)} workers, {args.lines} lines, {args.seconds:g} s runs, "
          f"median of {args.runs}, window 128 (radload: 8 sockets; quotad-sim: 2 processes)")
    header = ("kind", "rps", "timeouts", "errors", "p50_us", "p99_us", "p999_us", "cpu_quotad", "cpu_redis",
              "cpu_generator", "us_quotad", "us_redis")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))
    print(cpu_line(rows))


def workers_text(args: argparse.Namespace) -> str | int:
    return args.workers[0] if len(args.workers) == 1 else ",".join(map(str, args.workers))


def cpu_line(rows: list[dict[str, Any]]) -> str:
    """The report's last line: CPU µs a request of quotad and of its Redis, kind by kind (CI's figure to watch)."""
    parts = [f"{row['kind']} {row['us_quotad']:g} + {row['us_redis']:g}" for row in rows]
    return "CPU µs a request, quotad + its Redis: " + "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
