"""`quotad-sim` — simulators and load tools for quotad (argument parsing only)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import time
from typing import Any


async def _provision(args: argparse.Namespace) -> int:
    import redis.asyncio as aioredis

    from quotad import app
    from quotad import config as cfg
    from quotad.cli import redis_url
    from quotad.quota.store import QuotaStore
    from simulators.provision import provision

    config = cfg.load(args.config) if args.config else cfg.Config()
    pool = aioredis.BlockingConnectionPool.from_url(args.redis or redis_url(config), max_connections=64)
    client = aioredis.Redis(connection_pool=pool)
    store = QuotaStore(client, app.quota_settings_from(config), app.catalog_from(config))
    try:
        await store.load_scripts()
        started = time.monotonic()
        created = await provision(
            store, args.lines, args.plan, time.time(), dt.date.fromisoformat(args.start), args.family
        )
        print(f"provisioned {created} new lines of {args.lines} in {time.monotonic() - started:.1f} s")
    finally:
        await client.aclose()
    return 0


async def _scenario(args: argparse.Namespace) -> int:
    import json
    import sys

    from quotad import log
    from simulators import scenario as sc
    from simulators.report import print_scenario

    if not args.virtual:
        print("scenario: only --virtual is supported (a month in real time is what `gateway` is for)", file=sys.stderr)
        return 2
    log.setup("warning")
    plan = sc.load(args.file)
    if args.days is not None:
        plan = dataclasses.replace(plan, days=args.days)
    started = time.monotonic()
    report = await sc.run(plan, args.redis or "")
    if args.json:
        print(json.dumps(sc.summary(report)))
    else:
        print_scenario(report, time.monotonic() - started)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quotad-sim", description="Simulators and load tools for quotad.")
    sub = parser.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provision", help="create the simulated lines (MSISDN 8190xxxxxxxx)")
    prov.add_argument("--lines", type=int, required=True)
    prov.add_argument("--plan", default="light_start")
    prov.add_argument("--family", action="store_true", help="3 lines per family_share contract")
    prov.add_argument("--start", default=dt.date.today().replace(day=1).isoformat(), help="contract start date")
    prov.add_argument("--config", help="quotad config file (its Redis is used)")
    prov.add_argument("--redis", help="Redis URL (overrides the config)")
    prov.set_defaults(func=_provision)
    scen = sub.add_parser("scenario", help="run a scenario file (days of a contract) in virtual time")
    scen.add_argument("file", help="scenario TOML (e.g. simulators/scenarios/family_month.toml)")
    scen.add_argument("--virtual", action="store_true", help="virtual time against an in-process daemon")
    scen.add_argument("--days", type=float, help="override the scenario's length")
    scen.add_argument("--redis", help="Redis URL (default: a private redis-server in a temporary directory)")
    scen.add_argument("--json", action="store_true")
    scen.set_defaults(func=_scenario)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: Any = asyncio.run(args.func(args))
    return int(result)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
