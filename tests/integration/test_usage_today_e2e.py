"""A line's usage today (GET /v1/lines/{msisdn}/usage) against a real daemon: traffic reported over
RADIUS shows at once in today's running figures, not in the R-35 list of the 3 days before today,
and moves into that list when the Japan day turns. Each answer conforms to /v1/openapi.json."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from quotad import config as cfg
from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.config import Secret
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import (
    T0,
    access_request,
    accounting_request,
    daemon_config,
    exchange,
    running_daemon,
)
from tests.openapi_check import response_problems

TOKEN = "operator-token-0123456789abcdef"
CUSTOMER = "customer-token-fam-0123456789a"
MSISDN = "819000000001"
MB = 1_000_000
JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    tokens = (cfg.TokenSettings(token=Secret(TOKEN), role="operator"),
              cfg.TokenSettings(token=Secret(CUSTOMER), role="customer", contract="fam"))
    config = replace(daemon_config(redis_url), api=cfg.ApiSettings(tokens=tokens))
    async with running_daemon(config) as d:  # clock at T0: 2026-11-10 12:00 Japan time
        assert d.store is not None
        await d.store.provisioning.create_contract("fam", "family_share", dt.date(2026, 10, 1), T0)
        await d.store.provisioning.add_line("fam", MSISDN, "8981100000000000011", "440100000000001", "nano", False, T0)
        yield d


async def report_traffic(d: Daemon, octets: int) -> None:
    """Attach, Accounting-Start, then an Interim-Update carrying ``octets``, all over UDP."""
    datagram, _ = access_request(msisdn=MSISDN, extra=rp.attr(rp.ACCT_SESSION_ID, b"gw-today"))
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None
    accept = rp.decode(raw)
    assert accept.code == rp.ACCESS_ACCEPT
    for status, n, ident in ((1, 0, 20), (3, octets, 21)):
        req, _ = accounting_request("gw-today", status, n, 0, identifier=ident, msisdn=MSISDN,
                                    klass=accept.get(rp.CLASS))
        raw = await exchange(d.acct_port, req)
        assert raw is not None and rp.decode(raw).code == rp.ACCOUNTING_RESPONSE


async def usage(d: Daemon, token: str = TOKEN) -> dict[str, Any]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{d.http_port}",
                                     headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get("/v1/openapi.json") as resp:
            doc = await resp.json()
        async with http.get(f"/v1/lines/{MSISDN}/usage") as resp:
            assert resp.status == 200
            body = await resp.json()
    assert response_problems(body, doc, "/v1/lines/{msisdn}/usage", "GET", 200) == []
    return dict(body)


async def test_traffic_counted_today_shows_in_today_and_not_in_the_3_days(daemon: Daemon) -> None:
    await report_traffic(daemon, 3 * MB)
    assert await usage(daemon, CUSTOMER) == {
        "contract_id": "fam", "msisdn": MSISDN,
        "today": {"date": "2026-11-10", "high": 3 * MB, "low": 0, "as_of": "2026-11-10T12:00:00+09:00"},
        "days": [{"date": "2026-11-09", "high": 0, "low": 0},
                 {"date": "2026-11-08", "high": 0, "low": 0},
                 {"date": "2026-11-07", "high": 0, "low": 0}],
    }


async def test_at_the_japan_midnight_today_moves_into_the_3_days(daemon: Daemon) -> None:
    await report_traffic(daemon, 3 * MB)
    clock = daemon.clock
    assert isinstance(clock, SettableClock)
    clock.set(dt.datetime(2026, 11, 11, 0, 5, tzinfo=JST).timestamp())
    assert await usage(daemon) == {
        "contract_id": "fam", "msisdn": MSISDN,
        "today": {"date": "2026-11-11", "high": 0, "low": 0, "as_of": "2026-11-11T00:05:00+09:00"},
        "days": [{"date": "2026-11-10", "high": 3 * MB, "low": 0},
                 {"date": "2026-11-09", "high": 0, "low": 0},
                 {"date": "2026-11-08", "high": 0, "low": 0}],
    }
