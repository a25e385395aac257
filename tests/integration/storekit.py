"""Helpers of the store tests: exact-amount plans, Japan times, a Redis Cluster on loopback, and
short calls into the store (the fixtures that use them are in conftest.py)."""

from __future__ import annotations

import datetime as dt
import random
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis as sync_redis

from quotad.policy.plans import MB, Plan, PlanCatalog, default_catalog
from quotad.quota.embedded import find_cli, find_redis_server
from quotad.quota.model import AccountingReport, AccountResult, AttachRequest, AttachResult, LineRef
from quotad.quota.store import QuotaStore

JST = dt.timezone(dt.timedelta(hours=9))
SLICE = 10 * MB


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """Epoch of a Japan wall-clock time."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=JST).timestamp()


def catalog() -> PlanCatalog:
    """The shipped plans plus small ones that make exact amounts easy to set up."""
    plans = dict(default_catalog().plans)
    plans["tiny"] = Plan("tiny", max_lines=3, bundle_bytes=4 * MB, low_limit_3day_bytes=366 * MB)
    plans["small_family"] = Plan("small_family", max_lines=3, bundle_bytes=200 * MB,
                                 low_limit_3day_bytes=366 * MB)
    return PlanCatalog(plans)


StoreFactory = Callable[..., Awaitable[QuotaStore]]


# -- Redis Cluster: three primaries on free ports, same redis-server binary --------------------


def _free_cluster_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1, each with its cluster-bus port (+10000). Distinct:
    two random draws can pick the same free port, and two nodes on one port never form a cluster."""
    ports: list[int] = []
    for _ in range(200 * n):
        port = random.randrange(20000, 29000)
        if port in ports:
            continue
        try:
            for p in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError("no free port pairs")


def _start_node(binary: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", str(data_dir / "redis.log")]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (OSError, sync_redis.RedisError):
            pass
        time.sleep(0.1)
    return False


def _join_by_hand(clients: list[sync_redis.Redis]) -> None:
    """CLUSTER ADDSLOTS / MEET from Python, for when there is no redis-cli."""
    per = 16384 // len(clients) + 1
    for i, client in enumerate(clients):
        client.execute_command("CLUSTER ADDSLOTS", *range(i * per, min(16384, (i + 1) * per)))
    port0 = clients[0].connection_pool.connection_kwargs["port"]
    for client in clients[1:]:
        client.execute_command("CLUSTER MEET", "127.0.0.1", port0)


def _create_cluster(ports: list[int], clients: list[sync_redis.Redis]) -> None:
    cli = find_cli(find_redis_server())  # the client of the same server: valkey-cli for Valkey
    if cli is not None:
        nodes = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run([cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
    else:
        _join_by_hand(clients)


def _cluster_ok(clients: list[sync_redis.Redis]) -> bool:
    infos = [client.execute_command("CLUSTER INFO") for client in clients]  # parsed into a dict
    return all(str(i["cluster_state"]) == "ok" and int(i["cluster_known_nodes"]) == len(clients) for i in infos)




_counter = iter(range(1, 1_000_000))


async def new_line(store: QuotaStore, contract_id: str, n: int | None = None, now: float = 0.0) -> LineRef:
    """Add a line with made-up identifiers derived from n."""
    n = next(_counter) if n is None else n
    return await store.provisioning.add_line(contract_id, f"0901{n:07d}", f"898100{n:013d}", f"44010{n:010d}", now=now)


async def attach(store: QuotaStore, ref: LineRef, sid: str, now: float, imsi: str | None = None) -> AttachResult:
    return await store.attach(AttachRequest(ref, imsi, sid, "192.0.2.1", now))


async def report(store: QuotaStore, ref: LineRef, sid: str, status: int, octets: int, now: float,
                 exempt: int = 0) -> AccountResult:
    return await store.account(AccountingReport(ref, sid, status, octets, "192.0.2.1", now, exempt_octets=exempt))
