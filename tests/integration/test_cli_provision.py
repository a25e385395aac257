"""`quotad provision contract` without --start starts the contract on today's date in Japan time
(quota.timezone), whatever the host's time zone: issue 16, R-10. Real Redis, a fixed instant."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import redis.asyncio as aioredis

from quotad import app, cli
from quotad.config import Config
from quotad.quota.model import ContractView
from quotad.quota.store import QuotaStore

# 2026-12-01 02:00 Japan time = 2026-11-30 17:00 UTC: a UTC host's date is still November 30.
DEC_1_2AM_JST = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC).timestamp()
GB = 1_000_000_000


def _config(tmp_path: Path, redis_url: str) -> str:
    path = tmp_path / "quotad.toml"
    path.write_text(f'[redis]\nurl = "{redis_url}"\n')
    path.chmod(0o600)
    return str(path)


def _view(redis_url: str, contract_id: str, now: float) -> ContractView:
    async def read() -> ContractView:
        client = aioredis.Redis.from_url(redis_url)
        config = Config()
        store = QuotaStore(client, app.quota_settings_from(config), app.catalog_from(config))
        try:
            return await store.views.contract_view(contract_id, now)
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_start_date_is_the_japan_date_of_the_instant() -> None:
    assert cli.start_date(None, DEC_1_2AM_JST, "Asia/Tokyo") == dt.date(2026, 12, 1)
    assert cli.start_date(None, DEC_1_2AM_JST, "UTC") == dt.date(2026, 11, 30)  # what a UTC host's date was
    assert cli.start_date("2026-10-05", DEC_1_2AM_JST, "Asia/Tokyo") == dt.date(2026, 10, 5)


def test_r10_provision_contract_defaults_start_to_today_in_japan(redis_url: str, tmp_path: Path) -> None:
    """At 02:00 on December 1 (Japan) the contract starts on December 1 and gets December's whole
    bundle, not a pro-rated November one (a start of November 30 would be 1/30 of it)."""
    path = _config(tmp_path, redis_url)
    args = cli._parser().parse_args(["provision", "--config", path, "contract", "--id", "c1", "--plan", "light_start"])
    assert args.start is None
    assert cli.cmd_provision(args, now=DEC_1_2AM_JST) == 0
    view = _view(redis_url, "c1", DEC_1_2AM_JST)
    assert (view.start_date, view.pool) == ("20261201", GB)
    assert [(b.kind, b.size) for b in view.buckets] == [("bundle", GB)]


def test_provision_contract_keeps_a_given_start(redis_url: str, tmp_path: Path) -> None:
    path = _config(tmp_path, redis_url)
    args = cli._parser().parse_args(
        ["provision", "--config", path, "contract", "--id", "c2", "--plan", "light_start", "--start", "2026-11-30"])
    assert cli.cmd_provision(args, now=DEC_1_2AM_JST) == 0
    assert _view(redis_url, "c2", DEC_1_2AM_JST).start_date == "20261130"


def test_r10_simulator_provision_defaults_start_to_the_japan_month(redis_url: str, tmp_path: Path) -> None:
    """`quotad-sim provision` starts its contracts on the 1st of this month in Japan time: at 02:00
    on December 1 (Japan), December 1, so each gets December's whole bundle."""
    from simulators import cli as simcli

    args = simcli._parser().parse_args(["provision", "--lines", "1", "--redis", redis_url])
    assert args.start is None
    assert asyncio.run(simcli._provision(args, now=DEC_1_2AM_JST)) == 0
    view = _view(redis_url, "sim-0", DEC_1_2AM_JST)
    assert (view.start_date, view.pool) == ("20261201", GB)
