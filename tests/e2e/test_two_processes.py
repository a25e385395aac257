"""Two `quotad serve` processes on one Redis (R-24, R-73): the same switch flip asked of both at
once gives the live session exactly one CoA-Request, whichever process sends it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from quotad.policy.plans import default_catalog
from quotad.quota.model import QuotaSettings
from quotad.quota.store import QuotaStore
from quotad.radius import packet as rp
from tests.conftest import free_port
from tests.e2e.test_daemon_process import QUOTAD, _wait_ready
from tests.integration.daemon_fixture import access_request, accounting_request, exchange
from tests.integration.test_coa_e2e import Gateway
from tests.redis_client import make_client

TOKEN = "operator-token-0123456789abcdef"
MSISDN = "819000000021"
FLIPS = 6


def _config(tmp: Path, name: str, redis_url: str, coa_port: int) -> tuple[Path, dict[str, int]]:
    ports = {"auth": free_port(socket.SOCK_DGRAM), "acct": free_port(socket.SOCK_DGRAM), "http": free_port()}
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[server]\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\nhttp_port = {ports["http"]}\n'
        f'[redis]\nurl = "{redis_url}"\n[coa]\nport = {coa_port}\n'
        f'[[api.tokens]]\ntoken = "{TOKEN}"\nrole = "operator"\n'
    )
    os.chmod(path, 0o600)
    return path, ports


@pytest.fixture
def coa_port() -> int:
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture
def processes(tmp_path: Path, redis_url: str, coa_port: int) -> Iterator[list[dict[str, int]]]:
    procs: list[subprocess.Popen[bytes]] = []
    all_ports = []
    try:
        for name in ("a", "b"):
            path, ports = _config(tmp_path, name, redis_url, coa_port)
            proc = subprocess.Popen([*QUOTAD, "serve", "--config", str(path)], stderr=subprocess.PIPE)
            procs.append(proc)
            _wait_ready(ports["http"], proc)
            all_ports.append(ports)
        yield all_ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
async def gateway(coa_port: int) -> AsyncIterator[Gateway]:
    gw = Gateway()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: gw, local_addr=("127.0.0.1", coa_port))
    yield gw
    transport.close()


async def _provision(redis_url: str) -> None:
    store = QuotaStore(make_client(redis_url), QuotaSettings(), default_catalog())
    await store.load_scripts()
    await store.provisioning.create_contract("mini", "minimum_start", dt.date(2026, 10, 1), 1_790_000_000)
    await store.provisioning.add_line("mini", MSISDN, "8981100000000000219", "440100000000021")
    await store.provisioning.charge("mini", 1, "test", 1_790_000_000)
    await store.close()


async def test_r24_two_processes_one_transition_one_coa(
    redis_url: str, processes: list[dict[str, int]], gateway: Gateway
) -> None:
    """R-24 / R-73: each flip is asked of both processes at the same moment; the compare-and-set
    in Redis lets exactly one of them send the CoA, and the session is never dropped."""
    await _provision(redis_url)
    a, b = processes
    datagram, _ = access_request(msisdn=MSISDN, extra=rp.attr(rp.ACCT_SESSION_ID, b"gw-1"))
    raw = await exchange(a["auth"], datagram)
    assert raw is not None
    klass = rp.decode(raw).get(rp.CLASS)
    assert klass is not None
    req, _ = accounting_request("gw-1", 1, msisdn=MSISDN, klass=klass)
    assert await exchange(b["acct"], req) is not None

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def flip(ports: dict[str, int], on: bool) -> int:
            url = f"http://127.0.0.1:{ports['http']}/v1/lines/{MSISDN}/coupon"
            async with http.put(url, json={"on": on}) as resp:
                return resp.status

        for n in range(FLIPS):
            on = n % 2 == 1
            assert await asyncio.gather(flip(a, on), flip(b, on)) == [200, 200]
            coa = await gateway.next()
            assert (coa.code, coa.get(rp.FILTER_ID)) == (rp.COA_REQUEST, b"high-lte" if on else b"low")
            await asyncio.sleep(0.3)
            assert len(gateway.received) == n + 1
    assert [p.code for p in gateway.received] == [rp.COA_REQUEST] * FLIPS
