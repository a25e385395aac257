"""Redis Cluster (3 primaries + 3 replicas on loopback) under accounting load: the primary that
holds the contract's slot fails over to its replica, by CLUSTER FAILOVER (coordinated) or by being
killed (the replica takes over after the node timeout). Service resumes, and once the gateway's
last reports are acknowledged the usage counted is exact (R-71, R-73).

Killing a primary may lose writes it acknowledged but had not yet replicated (replication is
asynchronous). The design bounds that loss: a session's cumulative counter and the usage it
produced change in one script, so they roll back together, and the gateway's next report, carrying
the cumulative total, adds the difference again."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis as sync_redis

from quotad.quota import keys as k
from quotad.quota.embedded import EmbeddedRedisError, find_cli, find_redis_server
from tests.integration.daemon_fixture import daemon_config, running_daemon
from tests.integration.storekit import _free_cluster_ports
from tests.reliability.gateway import Gateway, Session, counted_octets

CONTRACT = "fo-c1"
LINES = ["819300000001", "819300000002", "819300000003"]


class Cluster:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.binary = find_redis_server()
        self.ports = _free_cluster_ports(6)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for port in self.ports:
            data = self.base / str(port)
            data.mkdir(parents=True, exist_ok=True)
            self.procs[port] = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                 "--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", str(data / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in self.ports:
            self._wait(lambda p=port: self.node(p).ping(), 10)
        cli = find_cli(self.binary)
        assert cli is not None
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        self._wait(self.healthy, 30)

    def node(self, port: int) -> sync_redis.Redis:
        return sync_redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

    def healthy(self) -> bool:
        """State ok on every node, three primaries each with a replica whose link is up."""
        live = [p for p, proc in self.procs.items() if proc.poll() is None]
        infos = [self.node(p).execute_command("CLUSTER INFO") for p in live]
        if not all(str(i["cluster_state"]) == "ok" for i in infos):
            return False
        nodes = self.node(self.ports[0]).execute_command("CLUSTER NODES").values()
        primaries = {n["node_id"] for n in nodes if "master" in n["flags"]}
        replicas = [n for n in nodes if n["master_id"] in primaries]
        if len(primaries) != 3 or len(replicas) != 3:
            return False
        links = [self.node(p).info("replication") for p in live]
        return sum(1 for i in links if i.get("master_link_status") == "up") == 3

    def primary_and_replica_of(self, key: str) -> tuple[int, int]:
        """Ports of the primary serving ``key``'s slot and of its replica (from CLUSTER NODES)."""
        client = self.node(self.ports[0])
        slot = int(client.execute_command("CLUSTER KEYSLOT", key))
        nodes = client.execute_command("CLUSTER NODES")  # redis-py: {"ip:port": {node_id, flags, ...}}
        port = {info["node_id"]: int(addr.split("@")[0].rsplit(":", 1)[1]) for addr, info in nodes.items()}
        for info in nodes.values():
            if "master" in info["flags"] and any(int(a) <= slot <= int(b) for a, b in info["slots"]):
                replica = next(r["node_id"] for r in nodes.values() if r["master_id"] == info["node_id"])
                return port[info["node_id"]], port[replica]
        raise AssertionError(f"no primary serves slot {slot}")

    def role(self, port: int) -> str:
        return str(self.node(port).execute_command("ROLE")[0], "ascii")

    @staticmethod
    def _wait(predicate: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():  # type: ignore[operator]
                    return
            except (OSError, sync_redis.RedisError):
                pass
            time.sleep(0.1)
        raise AssertionError("cluster did not get there in time")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    try:
        c = Cluster(tmp_path)
    except EmbeddedRedisError as exc:
        pytest.skip(f"no redis-server: {exc}")
    if find_cli(c.binary) is None:
        pytest.skip(f"no redis-cli or valkey-cli next to {c.binary}")
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("how", ["CLUSTER FAILOVER", "primary killed"])
async def test_r71_r73_cluster_primary_fails_over_under_load_service_resumes_usage_exact(
    cluster: Cluster, how: str
) -> None:
    url = f"redis://127.0.0.1:{cluster.ports[0]}/0"
    config = daemon_config(url)
    config = replace(config, redis=replace(config.redis, cluster=True, timeout=0.5))
    primary, replica = cluster.primary_and_replica_of(k.ContractKeys(CONTRACT).line(LINES[0]))
    # The real clock, as in production: a report's time (no Event-Timestamp: its arrival) orders it
    # against the session's latest. On a clock standing still every report had the same time, so a
    # report whose handler redis-py was still retrying through the failover, stored after the
    # gateway's next one, looked like a gateway that reset its counters (lower octets, not older)
    # and was counted whole again: 4.9 MB acknowledged, 8.0 MB counted, in 1 run of 3 under load.
    async with running_daemon(config, now=None) as d:
        assert d.store is not None
        today = dt.datetime.fromtimestamp(time.time(), dt.timezone(dt.timedelta(hours=9))).date()
        await d.store.provisioning.create_contract(CONTRACT, "family_share", today, time.time())
        for i, msisdn in enumerate(LINES, 1):
            await d.store.provisioning.add_line(CONTRACT, msisdn, f"898110300000000000{i}", f"44010300000000{i}",
                                                "nano", False, time.time())
        sessions = [Session(f"fo-{line[-1]}-{i}", line) for line in LINES for i in range(3)]
        async with Gateway(d.auth_port, d.acct_port, sessions) as gw:
            for s in sessions:
                assert await gw.attach(s) is not None
            # The load goes on until reports are acknowledged again after the failover (at most
            # 60 s): how long a failover takes depends on how busy the machine is, and a fixed
            # load window that ended before it did made this test fail in loaded full runs.
            stop = asyncio.Event()
            load = asyncio.ensure_future(gw.load(60, interval=0.03, stop=stop))
            await asyncio.sleep(1.5)
            failed_at = time.monotonic()
            if how == "CLUSTER FAILOVER":
                await asyncio.to_thread(cluster.node(replica).execute_command, "CLUSTER FAILOVER")
            else:
                cluster.procs[primary].send_signal(signal.SIGKILL)
            await asyncio.to_thread(cluster._wait, lambda: cluster.role(replica) == "master", 15)
            until = time.monotonic() + 30
            while time.monotonic() < until and sum(t > failed_at + 0.5 for t in gw.ack_times) < 20:
                await asyncio.sleep(0.1)
            stop.set()
            await load
            resumed = [t for t in gw.ack_times if t > failed_at + 0.5]
            assert resumed, "reports acknowledged again after the failover"
            await gw.settle(timeout=20)
    client = sync_redis.RedisCluster(host="127.0.0.1", port=replica)
    try:
        counted = counted_octets(client, CONTRACT, LINES)  # type: ignore[arg-type]
        print(f"cluster {how}: {gw.sent_reports} reports sent, {gw.acked_reports} acknowledged, "
              f"{counted} octets counted, {gw.expected_octets} acknowledged")
        assert counted == gw.expected_octets
    finally:
        client.close()
