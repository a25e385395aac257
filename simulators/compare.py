"""quotad beside FreeRADIUS + Redis, side by side (`make bench-compare`, issue 20).

The servers, each on free loopback ports, all answering the same generator (bench/radload.c,
window 128, 8 source sockets, ``--lines`` MSISDNs):

- ``quotad``: ``quotad serve``, ``--workers`` processes, its embedded Redis (append-only file on);
- ``fr-redis``: FreeRADIUS 3 (``--threads`` threads), the PAP/CHAP password from one Redis
  ``HGET``; accounting one ``INCRBY``;
- ``fr-quota``: the same plus, per request, ``EVALSHA`` of bench/quota1.lua (10 Redis calls, a
  stand-in for a quota script);
- ``pyfloor``: bench/pyfloor.py ``rawredis``, a bare uvloop server with one pipelined ``EVALSHA``
  of quota1.lua per request (the Python floor of that design; a measuring stick).

FreeRADIUS and the floor share one Redis of their own, started here with the same binary and
persistence as quotad's embedded one (``appendonly yes``, ``appendfsync everysec``), so the
comparison is not one Redis version against another. Runs alternate server by server (the
order reversed every other round), so the machine's swings fall on all alike, after a warm-up
of ``--warmup`` seconds of each kind on each server (quotad's first request of a line grants the
line its slice; the steady state is what is compared). For each server
and kind: median req/s, timeouts, p99 of the median run, the server's CPU µs per answered
request with its Redis (from /proc), then the ratios to quotad, and open-loop runs at ``--rate``
req/s with p50/p99/p99.9. Needs FreeRADIUS with its Redis module (Debian: ``freeradius``
``freeradius-redis``), gcc and libssl-dev; without FreeRADIUS it says so and exits 0 (the other
servers still run with ``--servers quotad,pyfloor``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simulators.bench import (
    REPO,
    Quotad,
    build_radload,
    cpu_seconds,
    first_sequence,
    free_port,
    provision,
    radload_source,
)

SERVERS = ("quotad", "fr-redis", "fr-quota", "pyfloor")
KINDS = ("pap", "chap", "acct")
QUOTA_LUA = REPO / "bench" / "quota1.lua"
PYFLOOR = REPO / "bench" / "pyfloor.py"
FR_LIBDIR = Path("/usr/lib/freeradius")


def freeradius_binary() -> str | None:
    """FreeRADIUS's daemon, if it and its Redis module are installed (Debian names it freeradius)."""
    found = shutil.which("freeradius") or shutil.which("radiusd")
    for candidate in (found, "/usr/sbin/freeradius", "/usr/sbin/radiusd"):
        if candidate and Path(candidate).is_file() and (FR_LIBDIR / "rlm_redis.so").exists():
            return candidate
    return None


def freeradius_config(confdir: Path, auth: int, acct: int, redis_port: int, threads: int, sha: str | None) -> str:
    """radiusd.conf for ``fr-redis`` (``sha`` None) or ``fr-quota`` (EVALSHA of quota1.lua ``sha``
    per request, in authorize and in accounting): PAP and CHAP against the password of one HGET,
    Message-Authenticator required, no logging of requests."""
    authorize = 'update control {\n      &Cleartext-Password := "%{redis:HGET sub:%{User-Name} pw}"'
    accounting = 'update control {\n      &Tmp-Integer-0 := "%{redis:INCRBY acct:%{Calling-Station-Id} ' \
                 '%{%{Acct-Input-Octets}:-0}}"'
    if sha:
        authorize += (f'\n      &Tmp-Integer-1 := "%{{redis:EVALSHA {sha} 1 q:%{{Calling-Station-Id}} 0 %l '
                      '%{Calling-Station-Id}}"')
        accounting = (f'update control {{\n      &Tmp-Integer-0 := "%{{redis:EVALSHA {sha} 1 q:%{{Calling-Station-Id}} '
                      '%{%{Acct-Input-Octets}:-0} %l %{Acct-Session-Id}}"')
    return f"""prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
confdir = {confdir}
raddbdir = ${{confdir}}
modconfdir = ${{confdir}}/mods-config
logdir = ${{confdir}}/log
radacctdir = ${{logdir}}/radacct
run_dir = ${{confdir}}/run
db_dir = ${{confdir}}
libdir = {FR_LIBDIR}
pidfile = ${{run_dir}}/radiusd.pid
name = radiusd
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
max_requests = 1048576
hostname_lookups = no
proxy_requests = no
log {{
  destination = files
  file = ${{logdir}}/radius.log
  colourise = no
  auth = no
  auth_badpass = no
  auth_goodpass = no
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = yes
}}
thread pool {{
  start_servers = {threads}
  max_servers = {threads}
  min_spare_servers = 1
  max_spare_servers = {threads}
  max_requests_per_server = 0
  max_queue_size = 65536
  auto_limit_acct = no
}}
client localhost {{
  ipaddr = 127.0.0.1
  proto = udp
  secret = testing123
  require_message_authenticator = yes
  nas_type = other
}}
modules {{
  pap {{
    normalise = yes
  }}
  chap {{
  }}
  always ok {{
    rcode = ok
  }}
  redis {{
    server = 127.0.0.1
    port = {redis_port}
    query_timeout = 5
    pool {{
      start = {threads}
      min = {threads}
      max = {threads}
      spare = 0
      uses = 0
      retry_delay = 1
      lifetime = 0
      idle_timeout = 0
    }}
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {auth}
    recv_buff = 4194304
  }}
  listen {{
    type = acct
    ipaddr = 127.0.0.1
    port = {acct}
    recv_buff = 4194304
  }}
  authorize {{
    {authorize}
    }}
    chap
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
    Auth-Type CHAP {{
      chap
    }}
  }}
  preacct {{
    ok
  }}
  accounting {{
    {accounting}
    }}
    ok
  }}
  post-auth {{
    ok
  }}
}}
"""


class Server:
    """One server under test: its ports, its processes (for CPU), and how to stop it."""

    def __init__(self, name: str, auth: int, acct: int, procs: list[subprocess.Popen[bytes]],
                 extra_pids: list[int] | None = None, quotad: Quotad | None = None) -> None:
        self.name, self.auth, self.acct, self.procs = name, auth, acct, procs
        self.extra_pids = extra_pids or []  # its Redis, when shared with others
        self.quotad = quotad

    def pids(self) -> tuple[list[int], list[int]]:
        """(the server's own processes, its Redis's)."""
        if self.quotad is not None:
            return self.quotad.pids()
        return [p.pid for p in self.procs], self.extra_pids

    def stop(self) -> None:
        if self.quotad is not None:
            self.quotad.stop()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def _resp(port: int, *args: bytes) -> bytes:
    """One Redis command over a fresh TCP connection; its reply (a status, integer or bulk string)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args))
        reply = b""
        while True:
            chunk = sock.recv(65536)
            reply += chunk
            head, _, rest = reply.partition(b"\r\n")
            if not chunk or (_ and (not head.startswith(b"$") or len(rest) >= max(int(head[1:]), 0) + 2)):
                break
    if reply.startswith(b"-"):
        raise RuntimeError(f"redis: {reply.decode(errors='replace').strip()}")
    head, _, rest = reply.partition(b"\r\n")
    return rest[: int(head[1:])] if head.startswith(b"$") else head[1:]


def _wait_udp_answering(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    """Wait until something is bound to 127.0.0.1:``port`` (UDP), or fail naming the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}; see {log}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return  # taken: the server is up
        time.sleep(0.2)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s; see {log}")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """FreeRADIUS's (and the floor's) Redis: the binary quotad's embedded Redis uses, AOF everysec."""
    from quotad.quota.embedded import find_redis_server

    port = free_port(socket.SOCK_STREAM)
    data = workdir / "redis-fr"
    data.mkdir()
    cmd = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
           "--appendfsync", "everysec", "--dir", str(data), "--daemonize", "no", "--logfile", str(data / "log")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            _resp(port, b"PING")
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the comparison's redis-server did not start; see {data / 'log'}") from None
            time.sleep(0.1)


def start_freeradius(binary: str, workdir: Path, name: str, redis_port: int, threads: int,
                     sha: str | None, redis_pid: int) -> Server:
    confdir = workdir / name
    for sub in ("log", "run"):
        (confdir / sub).mkdir(parents=True)
    auth, acct = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    (confdir / "radiusd.conf").write_text(freeradius_config(confdir, auth, acct, redis_port, threads, sha))
    log = confdir / "out.log"
    proc = subprocess.Popen([binary, "-f", "-d", str(confdir), "-n", "radiusd"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    _wait_udp_answering(acct, proc, log)
    return Server(name, auth, acct, [proc], [redis_pid])


def start_pyfloor(workdir: Path, redis_port: int, sha: str, redis_pid: int) -> Server:
    port = free_port(socket.SOCK_DGRAM)
    log = workdir / "pyfloor.log"
    env = {"QUOTA_SHA": sha, "REDIS_PORT": str(redis_port), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, str(PYFLOOR), "rawredis", str(port)], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    _wait_udp_answering(port, proc, log)
    return Server("pyfloor", port, port, [proc], [redis_pid])


def run(radload: Path, server: Server, kind: str, seconds: float, lines: int, rate: int = 0) -> dict[str, Any]:
    port = server.acct if kind == "acct" else server.auth
    cmd = [str(radload), "-H", "127.0.0.1", "-p", str(port), "-s", "testing123", "-k", kind, "-d", str(seconds),
           "-w", "128", "-n", "8", "-m", str(lines), "-r", str(rate), "-S", first_sequence()]
    own, redis = server.pids()
    before = cpu_seconds(own), cpu_seconds(redis)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    result["server_cpu_s"] = cpu_seconds(own) - before[0]
    result["redis_cpu_s"] = cpu_seconds(redis) - before[1]
    return result


def summarize(server: str, kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median req/s; p99 of the median run; CPU µs a request (server, its Redis, both) as medians over the runs."""
    median_run = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]

    def us(key: str) -> float:
        return round(statistics.median(r[key] / max(r["recv"], 1) * 1e6 for r in runs), 1)

    for r in runs:
        r["total_cpu_s"] = r["server_cpu_s"] + r["redis_cpu_s"]
    return {
        "server": server, "kind": kind, "rps": round(statistics.median(r["rps"] for r in runs)),
        "rps_runs": [round(r["rps"]) for r in runs], "timeouts": sum(r["timeouts"] for r in runs),
        "errors": sum(r["bad_auth"] + r["bad_ma"] for r in runs),
        "p50_us": median_run["p50_us"], "p99_us": median_run["p99_us"], "p999_us": median_run["p999_us"],
        "us_server": us("server_cpu_s"), "us_redis": us("redis_cpu_s"), "us_total": us("total_cpu_s"),
    }


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """quotad against each other server, kind by kind: req/s ratio and CPU-per-request ratio."""
    by = {(r["server"], r["kind"]): r for r in rows}
    out = []
    for kind in KINDS:
        q = by.get(("quotad", kind))
        for ref in SERVERS[1:]:
            f = by.get((ref, kind))
            if q and f:
                out.append({"kind": kind, "against": ref, "rps_ratio": round(q["rps"] / f["rps"], 2),
                            "us_ratio": round(q["us_total"] / f["us_total"], 2)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--workers", type=int, default=2, help="quotad's server.workers")
    parser.add_argument("--threads", type=int, default=16, help="FreeRADIUS's thread pool")
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of each kind on each server before the measured runs, not counted")
    parser.add_argument("--rate", type=int, default=5000, help="offered req/s of the open-loop runs (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if bad := [s for s in servers if s not in SERVERS] + [k for k in kinds if k not in KINDS]:
        parser.error(f"unknown: {', '.join(bad)}")
    src = radload_source()
    if not src.exists() or shutil.which("gcc") is None:
        print(f"bench-compare skipped: needs gcc and {src}")
        return 0
    fr = freeradius_binary()
    if fr is None and any(s.startswith("fr-") for s in servers):
        print("bench-compare: FreeRADIUS with its Redis module is not installed (Debian: apt-get install "
              "freeradius freeradius-redis); nothing compared. `--servers quotad,pyfloor` runs the rest.")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="quotad-compare-"))
    started: dict[str, Server] = {}
    redis_proc: subprocess.Popen[bytes] | None = None
    redis_port, sha = 0, ""
    try:
        radload = build_radload(workdir)
        if any(s != "quotad" for s in servers):
            redis_proc, redis_port = start_redis(workdir)
            _resp(redis_port, b"HSET", b"sub:mio@iij", b"pw", b"iij")
            sha = _resp(redis_port, b"SCRIPT", b"LOAD", QUOTA_LUA.read_bytes()).decode()
            # the script runs (an error here would make fr-quota and the floor measure error replies)
            int(_resp(redis_port, b"EVALSHA", sha.encode(), b"1", b"q:check", b"0", b"1700000000", b"check"))
        for name in servers:
            if name == "quotad":
                q = Quotad(workdir / "quotad", args.workers)
                started[name] = Server(name, q.auth, q.acct, [], quotad=q)
                q.start()
                provision(q, args.lines)
            elif name.startswith("fr-"):
                assert fr is not None and redis_proc is not None
                started[name] = start_freeradius(fr, workdir, name, redis_port, args.threads,
                                                 sha if name == "fr-quota" else None, redis_proc.pid)
            else:
                assert redis_proc is not None
                started[name] = start_pyfloor(workdir, redis_port, sha, redis_proc.pid)
        time.sleep(1)
        for kind in kinds if args.warmup else ():  # not counted: quotad's first request of a line grants its slice
            for name in servers:
                run(radload, started[name], kind, args.warmup, args.lines)
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for kind in kinds:
            for i in range(args.runs):
                for name in servers if i % 2 == 0 else servers[::-1]:
                    results.setdefault((name, kind), []).append(
                        run(radload, started[name], kind, args.seconds, args.lines))
        rows = [summarize(name, kind, results[(name, kind)]) for kind in kinds for name in servers]
        open_loop = []
        if args.rate:
            for kind in [k for k in ("pap", "acct") if k in kinds]:
                for name in servers:
                    one = run(radload, started[name], kind, args.seconds, args.lines, args.rate)
                    open_loop.append(summarize(name, f"{kind}@{args.rate}/s", [one]))
    finally:
        for server in started.values():
            server.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows, open_loop, args)
    return 0


def report(rows: list[dict[str, Any]], open_loop: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({"workers": args.workers, "threads": args.threads, "seconds": args.seconds,
                          "runs": args.runs, "rows": rows, "ratios": ratios(rows), "open_loop": open_loop}))
        return
    print(f"side by side: quotad ({args.workers} workers), FreeRADIUS ({args.threads} threads), the Python floor; "
          f"radload window 128, 8 sockets, {args.lines} MSISDNs, {args.seconds:g} s runs, median of {args.runs}, "
          "alternated")
    print("µs = CPU µs per answered request: the server's own + its Redis's = both")
    header = ("server", "kind", "rps", "rps_runs", "timeouts", "errors", "p50_us", "p99_us",
              "us_server", "us_redis", "us_total")
    print(" | ".join(header))
    for row in rows + open_loop:
        print(" | ".join(str(row[h]) for h in header))
    for r in ratios(rows):
        print(f"quotad/{r['against']} {r['kind']}: req/s ratio {r['rps_ratio']:.2f}, "
              f"CPU µs a request ratio {r['us_ratio']:.2f}")
    for row in open_loop:
        print(f"open loop {row['server']} {row['kind']}: p50 {row['p50_us'] / 1000:.2f} ms, "
              f"p99 {row['p99_us'] / 1000:.2f} ms, p99.9 {row['p999_us'] / 1000:.2f} ms, "
              f"{row['rps']} req/s answered, {row['timeouts']} timeouts")


if __name__ == "__main__":
    raise SystemExit(main())
