"""The throughput benchmark (`make bench`, `make bench-quick` in CI).

Starts quotad (``--workers`` processes, its embedded Redis) on free loopback ports, provisions
``--lines`` simulated lines, builds ../shared/tools/radload.c (the C generator) and runs it:
closed loop at window 128 for PAP, CHAP and accounting (median of ``--runs``), then open loop at
10,000 req/s offered for latency. CPU time of quotad, Redis and the generator is read from /proc
for each run, so the report says who used the two cores. It reports; it fails only when a run
itself fails (no replies), never on a figure: a loaded CI machine is noisy.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
# The generator's source: ../shared/tools/radload.c next to the checkout, or QUOTAD_RADLOAD_SRC.
RADLOAD_SRC = Path(os.environ.get("QUOTAD_RADLOAD_SRC")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "tools" / "radload.c")


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


def build_radload(workdir: Path) -> Path:
    binary = workdir / "radload"
    cmd = ["gcc", "-O2", "-o", str(binary), str(RADLOAD_SRC), "-lcrypto"]
    subprocess.run(cmd, check=True, capture_output=True)
    return binary


class Quotad:
    def __init__(self, workdir: Path, workers: int):
        self.workdir = workdir
        self.auth = free_port(socket.SOCK_DGRAM)
        self.acct = free_port(socket.SOCK_DGRAM)
        self.http = free_port(socket.SOCK_STREAM)
        self.config = workdir / "quotad.toml"
        self.config.write_text(
            f'[server]\nworkers = {workers}\nauth_port = {self.auth}\nacct_port = {self.acct}\n'
            f'http_port = {self.http}\nlog_level = "warning"\n[redis]\ndata_dir = "{workdir / "data"}"\n'
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
        tree = [self.proc.pid, *children(self.proc.pid)]
        redis = [p for p in tree if "redis-server" in Path(f"/proc/{p}/comm").read_text(errors="replace")]
        return [p for p in tree if p not in redis], redis

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


def run_radload(radload: Path, q: Quotad, kind: str, seconds: float, lines: int, rate: int = 0) -> dict[str, Any]:
    port = q.acct if kind == "acct" else q.auth
    cmd = [str(radload), "-p", str(port), "-s", "testing123", "-k", kind, "-d", str(seconds),
           "-w", "128", "-n", "8", "-m", str(lines), "-r", str(rate)]
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


def summarize(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]  # the median run
    wall = best["wall_s"]
    return {
        "kind": kind, "rps": round(statistics.median(r["rps"] for r in runs)),
        "timeouts": sum(r["timeouts"] for r in runs), "errors": sum(r["bad_auth"] + r["bad_ma"] for r in runs),
        "p50_us": best["p50_us"], "p99_us": best["p99_us"], "p999_us": best["p999_us"],
        "cpu_quotad": f"{best['quotad_cpu_s'] / wall:.0%}", "cpu_redis": f"{best['redis_cpu_s'] / wall:.0%}",
        "cpu_generator": f"{best['gen_cpu_s'] / wall:.0%}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.bench", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=10000, help="offered rate of the latency runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not RADLOAD_SRC.exists() or shutil.which("gcc") is None:
        print(f"benchmark skipped: needs gcc and {RADLOAD_SRC}")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="quotad-bench-"))
    q = Quotad(workdir, args.workers)
    try:
        radload = build_radload(workdir)
        q.start()
        provision(q, args.lines)
        rows = []
        for kind in ("pap", "chap", "acct"):
            runs = [run_radload(radload, q, kind, args.seconds, args.lines) for _ in range(args.runs)]
            rows.append(summarize(kind, runs))
        for kind in ("pap", "acct"):
            fixed = run_radload(radload, q, kind, args.seconds, args.lines, rate=args.rate)
            rows.append({**summarize(kind, [fixed]), "kind": f"{kind}@{args.rate}/s"})
    finally:
        q.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows, args)
    return 0


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({"workers": args.workers, "seconds": args.seconds, "runs": args.runs, "rows": rows}))
        return
    print(f"quotad benchmark: {args.workers} workers, {args.lines} lines, {args.seconds:g} s runs, "
          f"median of {args.runs}, radload window 128 (8 sockets)")
    header = ("kind", "rps", "timeouts", "errors", "p50_us", "p99_us", "p999_us", "cpu_quotad", "cpu_redis",
              "cpu_generator")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[h]) for h in header))


if __name__ == "__main__":
    raise SystemExit(main())
