"""Redis faults under accounting load: `quotad serve` (a real process) on a real redis-server
process with AOF, a simulated gateway that keeps exact books of what was acknowledged (R-71)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from quotad.radius import packet as rp
from tests.conftest import free_port
from tests.integration.daemon_fixture import SECRET
from tests.reliability.certs import Pair, make_ca, make_leaf
from tests.reliability.gateway import Gateway, Session, counted_octets, provision
from tests.reliability.helpers import (
    QuotadProcess,
    RedisProcess,
    ready,
    sample,
    scrape,
    udp_exchange,
    wait_for,
)

CONTRACT = "fault-c1"
LINES = ["819100000001", "819100000002", "819100000003"]


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def quotad(tmp_path: Path, redis_proc: RedisProcess) -> Iterator[QuotadProcess]:
    asyncio.run(provision(redis_proc.url, CONTRACT, LINES))
    proc = QuotadProcess(tmp_path, redis_url=redis_proc.url, redis_extra="timeout = 0.5\n")
    proc.start()
    yield proc
    if proc.proc is not None:
        proc.kill(signal.SIGTERM)


def sessions(per_line: int = 4) -> list[Session]:
    return [Session(f"rf-{line[-1]}-{i}", line) for line in LINES for i in range(per_line)]


def open_fds(quotad: QuotadProcess) -> int:
    assert quotad.proc is not None
    return len(os.listdir(f"/proc/{quotad.proc.pid}/fd"))


class ReadyWatch:
    """Polls /readyz in a thread, recording (time, answer) pairs."""

    def __init__(self, http_port: int) -> None:
        self.http_port = http_port
        self.seen: list[tuple[float, bool | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append((time.monotonic(), ready(self.http_port)))
            time.sleep(0.1)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_r71_redis_stopped_during_load_nothing_acknowledged_then_counted_exactly_once(
    quotad: QuotadProcess, redis_proc: RedisProcess
) -> None:
    """Redis stops for 3 s under ~500 reports/s: no report is acknowledged while it is down
    (quotad answers only once stored), /readyz says 503, quotad keeps running; once Redis is back
    the gateway's retries and next reports go through, and the usage quotad counted equals,
    octet for octet, the sum of the last acknowledged cumulative totals (nothing lost, nothing
    counted twice)."""
    gateway_sessions = sessions()
    window: dict[str, float] = {}

    async def scenario() -> Gateway:
        async with Gateway(quotad.auth, quotad.acct, gateway_sessions) as gw:
            for s in gateway_sessions:
                assert (await gw.attach(s)) is not None
            window["fds"] = open_fds(quotad)
            load = asyncio.ensure_future(gw.load(6.5))
            await asyncio.sleep(2.0)
            window["stop"] = time.monotonic()
            await asyncio.to_thread(redis_proc.stop)
            await asyncio.sleep(3.0)
            window["start"] = time.monotonic()
            await asyncio.to_thread(redis_proc.start)
            await load
            await gw.settle()
            return gw

    with ReadyWatch(quotad.http) as watch:
        gw = asyncio.run(scenario())
    assert quotad.proc is not None and quotad.proc.poll() is None, "quotad kept running"
    assert open_fds(quotad) <= window["fds"] + 2, "no sockets leaked by the failed connections"
    # nothing acknowledged while Redis was down (0.3 s for answers already on their way)
    in_outage = [t for t in gw.ack_times if window["stop"] + 0.3 < t < window["start"]]
    assert in_outage == []
    assert gw.acked_reports > 1000
    assert gw.sent_reports > gw.acked_reports  # reports of the outage went unanswered
    states = [answer for t, answer in watch.seen if window["stop"] + 0.6 < t < window["start"]]
    assert states and not any(states), states  # 503 (False) throughout the outage
    assert ready(quotad.http) is True
    # every acknowledged octet counted, once
    counted = counted_octets(redis_proc.client(), CONTRACT, LINES)
    print(f"redis outage: {gw.sent_reports} reports sent, {gw.acked_reports} acknowledged, "
          f"{counted} octets counted, {gw.expected_octets} acknowledged")
    assert counted == gw.expected_octets
    samples = scrape(quotad.http)
    assert sample(samples, "quotad_redis_errors_total", op="account") > 0
    assert sample(samples, "quotad_radius_dropped_total", reason="no_reply") > 0


def snapshot(client: sync_redis.Redis) -> dict[bytes, object]:
    """Every key's value, by type, and whether it expires (the content, not the encoding)."""
    out: dict[bytes, object] = {}
    for key in client.keys("*"):
        kind = client.type(key)
        value: object
        if kind == b"string":
            value = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected type {kind!r} of {key!r}")
        out[key] = (kind, value, client.pttl(key) > 0)
    return out


def test_r71_redis_killed_restarts_from_aof_with_state_as_acknowledged(
    quotad: QuotadProcess, redis_proc: RedisProcess
) -> None:
    """Load, then SIGKILL Redis (no shutdown, no final fsync) and restart it on its AOF: every key
    quotad wrote (pools, held slices, sessions, leases, usage) is as it was, and the usage equals
    what the gateway saw acknowledged; quotad serves again without a restart of its own."""
    gateway_sessions = sessions(2)

    async def load() -> Gateway:
        async with Gateway(quotad.auth, quotad.acct, gateway_sessions) as gw:
            for s in gateway_sessions:
                assert (await gw.attach(s)) is not None
            await gw.load(2.0)
            await gw.settle()
            return gw

    gw = asyncio.run(load())
    client = redis_proc.client()
    before = snapshot(client)
    assert any(b":live:" in key for key in before) and any(b":leases" in key for key in before)
    assert counted_octets(client, CONTRACT, LINES) == gw.expected_octets
    redis_proc.stop(signal.SIGKILL)
    redis_proc.start()
    client = redis_proc.client()
    after = snapshot(client)
    assert after.keys() == before.keys()
    assert after == before
    wait_for(lambda: ready(quotad.http), 10, "quotad ready again")

    async def more() -> Gateway:
        async with Gateway(quotad.auth, quotad.acct, gateway_sessions) as again:
            await again.settle()
            return again

    asyncio.run(more())
    assert counted_octets(client, CONTRACT, LINES) == sum(s.acked for s in gateway_sessions)


# --- Status-Server (RFC 5997): not ready while Redis is down ---------------------------------------


class RadsecPeer:
    """One long-lived RadSec connection, as a peer keeps it and probes it with Status-Server."""

    def __init__(self, port: int, ca: Pair, gateway: Pair) -> None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca.cert))
        context.load_cert_chain(str(gateway.cert), str(gateway.key))
        self.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                        server_hostname="localhost")

    def exchange(self, datagram: bytes, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        self.sock.sendall(datagram)
        try:
            header = self._read(4)
        except TimeoutError:
            return None
        self.sock.settimeout(2.0)
        return header + self._read(int.from_bytes(header[2:4], "big") - 4)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def test_status_server_not_answered_while_redis_is_down_then_answered_again(
    tmp_path: Path, redis_proc: RedisProcess
) -> None:
    """RFC 5997 says a server answers Status-Server when it is alive; quotad answers it only when it
    can serve. `quotad serve` (a real process) with UDP and RadSec: Status-Server is answered on the
    authentication port, the accounting port and a RadSec connection; Redis stops, and within one
    health check (5 s) no probe is answered, each counted not_ready, and the RadSec connection stays
    open (a gateway's watchdog times out and it fails over); Redis starts again, and within one
    check every probe is answered again, on the same RadSec connection. Both turns are logged."""
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = make_ca(pki, "gateways-ca")
    server, gateway = make_leaf(pki, ca, "quotad.example", server=True), make_leaf(pki, ca, "pgw1.example")
    radsec_port = free_port()
    radsec = (f'\n[radsec]\nenabled = true\nport = {radsec_port}\ncert = "{server.cert}"\nkey = "{server.key}"\n'
              f'ca = "{ca.cert}"\nclients = {{ pgw1 = "pgw1.example" }}\n')
    quotad = QuotadProcess(tmp_path, extra=radsec, redis_url=redis_proc.url, redis_extra="timeout = 0.5\n")
    quotad.start()
    peer = RadsecPeer(radsec_port, ca, gateway)
    ident = iter(range(256))

    def probes(timeout: float) -> dict[str, int | None]:
        """One Status-Server on each transport: the reply's code, or None when none came."""
        out: dict[str, int | None] = {}
        for transport, port in (("auth", quotad.auth), ("acct", quotad.acct), ("radsec", radsec_port)):
            secret = b"radsec" if transport == "radsec" else SECRET
            datagram, auth = rp.encode_request(rp.STATUS_SERVER, next(ident), secret)
            raw = (peer.exchange(datagram, timeout) if transport == "radsec"
                   else udp_exchange(port, datagram, timeout=timeout))
            if raw is None:
                out[transport] = None
                continue
            reply = rp.decode(raw)
            assert rp.verify_response_authenticator(reply, auth, secret)
            assert rp.verify_message_authenticator(reply, secret, auth, request_code=rp.STATUS_SERVER) is True
            out[transport] = reply.code
        return out

    answering = {"auth": rp.ACCESS_ACCEPT, "acct": rp.ACCOUNTING_RESPONSE, "radsec": rp.ACCESS_ACCEPT}
    silent: dict[str, int | None] = {"auth": None, "acct": None, "radsec": None}
    try:
        assert probes(2.0) == answering
        redis_proc.stop()
        stopped = time.monotonic()
        wait_for(lambda: udp_exchange(quotad.auth, rp.encode_request(rp.STATUS_SERVER, 250, SECRET)[0],
                                      timeout=0.2) is None, 10, "Status-Server unanswered", step=0.2)
        assert time.monotonic() - stopped < 7.5  # one check (5 s), its PING refused at once
        samples = scrape(quotad.http)
        assert probes(0.5) == silent
        assert sample(scrape(quotad.http), "quotad_radius_dropped_total", reason="not_ready") == sample(
            samples, "quotad_radius_dropped_total", reason="not_ready") + 3
        assert sample(samples, "quotad_redis_up") == 0
        assert '"event": "redis_unreachable"' in quotad.log.read_text()
        redis_proc.start()
        started = time.monotonic()
        wait_for(lambda: udp_exchange(quotad.auth, rp.encode_request(rp.STATUS_SERVER, 251, SECRET)[0],
                                      timeout=0.2) is not None, 10, "Status-Server answered again", step=0.2)
        assert time.monotonic() - started < 7.5
        assert probes(2.0) == answering  # the RadSec connection, open throughout
        assert '"event": "redis_reachable"' in quotad.log.read_text()
    finally:
        peer.close()
        quotad.kill(signal.SIGTERM)
