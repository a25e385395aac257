"""A gateway that never answers CoA, end to end through the daemon: each request is retransmitted
a bounded number of times, the outstanding requests per gateway are bounded (the rest dropped and
counted), and Access-Requests meanwhile are answered as fast as before (R-24, R-70)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from quotad import metrics
from quotad.app import Daemon
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from tests.conftest import free_port
from tests.integration.daemon_fixture import SECRET, T0, access_request, daemon_config, exchange, running_daemon

LINES = [LineRef("fam", f"81900000000{i}") for i in (1, 2, 3)]
MAX_PENDING = 8


class SilentGateway(asyncio.DatagramProtocol):
    """Receives CoA-Requests on its RFC 5176 port and never answers."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)


def coa_count(outcome: str) -> float:
    return metrics.REGISTRY.get_sample_value("quotad_coa_requests_total", {"kind": "coa", "outcome": outcome}) or 0.0


@pytest.fixture
async def setup(redis_url: str) -> AsyncIterator[tuple[Daemon, SilentGateway]]:
    port = free_port(socket.SOCK_DGRAM)
    gateway = SilentGateway()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gateway, local_addr=("127.0.0.1", port))
    try:
        async with running_daemon(daemon_config(redis_url, coa_port=port)) as d:
            assert d.store is not None and d.coa is not None
            # short timers so the whole retry schedule fits in a CI second: 0.1 s, doubling to 0.2 s
            for name, value in (("_timeout", 0.1), ("_max_timeout", 0.2), ("_max_pending", MAX_PENDING)):
                assert hasattr(d.coa, name), name
                setattr(d.coa, name, value)
            await d.store.provisioning.create_contract("fam", "family_share", dt.date(2026, 11, 1), T0)
            for i, ref in enumerate(LINES, 1):
                await d.store.provisioning.add_line("fam", ref.msisdn, f"898110000000000001{i}", f"44010000000000{i}",
                                                    "nano", False, T0)
            yield d, gateway
    finally:
        transport.close()


async def auth_latencies(d: Daemon, n: int) -> list[float]:
    out = []
    for i in range(n):
        datagram, _ = access_request(msisdn=LINES[0].msisdn, identifier=i, extra=rp.attr(rp.ACCT_SESSION_ID, b"s-1"))
        started = time.monotonic()
        raw = await exchange(d.auth_port, datagram, timeout=2.0)
        out.append(time.monotonic() - started)
        assert raw is not None and rp.decode(raw).code == rp.ACCESS_ACCEPT
    return out


async def test_r70_gateway_never_answering_coa_retries_and_queue_bounded_auth_unaffected(
    setup: tuple[Daemon, SilentGateway],
) -> None:
    d, gateway = setup
    assert d.store is not None and d.sessions is not None and d.coa is not None
    for i, ref in enumerate(LINES, 1):  # one live session per line, at the silent gateway
        datagram, _ = access_request(msisdn=ref.msisdn, identifier=100 + i,
                                     extra=rp.attr(rp.ACCT_SESSION_ID, f"s-{i}".encode()))
        assert await exchange(d.auth_port, datagram) is not None
    baseline = await auth_latencies(d, 30)
    timeouts, dropped = coa_count("timeout"), coa_count("dropped_queue_full")

    flips = 0
    for n in range(10):  # 30 speed changes, each a CoA to the silent gateway
        for ref in LINES:
            await d.store.provisioning.set_coupon(ref, n % 2 == 1, T0)
            await d.sessions.on_line_change(ref, "coupon")
            flips += 1
    depth = metrics.REGISTRY.get_sample_value("quotad_coa_queue_depth") or 0.0
    during = await auth_latencies(d, 30)
    assert depth <= MAX_PENDING

    deadline = time.monotonic() + 10
    while coa_count("timeout") - timeouts + coa_count("dropped_queue_full") - dropped < flips:
        assert time.monotonic() < deadline, "every CoA ends, as a timeout or dropped"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # no retransmission after the last timeout
    sent = Counter(gateway.received)
    timed_out = coa_count("timeout") - timeouts
    assert timed_out == len(sent) >= MAX_PENDING
    assert coa_count("dropped_queue_full") - dropped == flips - timed_out > 0
    assert set(sent.values()) == {4}, "the first attempt and exactly 3 retransmissions"
    for datagram in sent:
        pkt = rp.decode(datagram)
        assert pkt.code == rp.COA_REQUEST and rp.verify_request_authenticator(pkt, SECRET)
    assert (metrics.REGISTRY.get_sample_value("quotad_coa_queue_depth") or 0.0) == 0
    # Access-Requests were answered as fast during the CoA backlog as before it
    assert max(during) < 0.5
    assert statistics.median(during) <= 2 * statistics.median(baseline) + 0.005, (baseline, during)
