"""`quotad-sim` — simulators and load tools for quotad: argument parsing, and the glue that
starts each tool (``provision`` opens quotad's store here and hands it to simulators.provision)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any


async def _provision(args: argparse.Namespace, now: float | None = None) -> int:
    import redis.asyncio as aioredis

    from quotad import app
    from quotad import config as cfg
    from quotad.cli import redis_url, start_date
    from quotad.quota.store import QuotaStore
    from simulators.provision import provision

    config = cfg.load(args.config) if args.config else cfg.Config()
    pool = aioredis.BlockingConnectionPool.from_url(args.redis or redis_url(config), max_connections=64)
    client = aioredis.Redis(connection_pool=pool)
    store = QuotaStore(client, app.quota_settings_from(config), app.catalog_from(config))
    try:
        await store.load_scripts()
        started = time.monotonic()
        at = time.time() if now is None else now
        # Default: the 1st of this month in Japan time (quota.timezone), not the host's month.
        start = start_date(args.start, at, config.quota.timezone)
        if not args.start:
            start = start.replace(day=1)
        created = await provision(store, args.lines, args.plan, at, start, args.family)
        print(f"provisioned {created} new lines of {args.lines} in {time.monotonic() - started:.1f} s")
    finally:
        await client.aclose()
    return 0


async def _scenario(args: argparse.Namespace) -> int:
    import json

    from quotad import log
    from simulators import scenario as sc
    from simulators import trace
    from simulators.report import print_scenario

    if not args.virtual:
        print("scenario: only --virtual is supported (a month in real time is what `gateway` is for)", file=sys.stderr)
        return 2
    log.setup("warning")
    plan = sc.load(args.file)
    if args.days is not None:
        plan = dataclasses.replace(plan, days=args.days)
    started = time.monotonic()
    report = await sc.run(plan, args.redis or "", record=bool(args.record))
    if args.record:
        Path(args.record).write_text(trace.dumps(report.trace))
    if args.json:
        print(json.dumps(sc.summary(report)))
    else:
        print_scenario(report, time.monotonic() - started)
    return 1 if report.failed else 0  # a request or attach check did not get the answer expected


async def _replay(args: argparse.Namespace) -> int:
    import json

    from simulators import trace, wire
    from simulators.replay import Target, replay
    from simulators.report import replay_summary, replay_text

    events = trace.load(args.trace)
    nas = wire.Nas(args.nas_ip, args.secret.encode())
    target = Target(args.server, args.auth_port, args.acct_port, nas, coa_port=args.coa_port or None)
    result = await replay(events, target, args.speed)
    print(json.dumps(replay_summary(result)) if args.json else replay_text(result))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quotad-sim", description="Simulators and load tools for quotad.")
    sub = parser.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provision", help="create the simulated lines (MSISDN 8190xxxxxxxx)")
    prov.add_argument("--lines", type=int, required=True)
    prov.add_argument("--plan", default="light_start")
    prov.add_argument("--family", action="store_true", help="3 lines per family_share contract")
    prov.add_argument("--start", help="contract start date (default: the 1st of this month in quota.timezone)")
    prov.add_argument("--config", help="quotad config file (its Redis is used)")
    prov.add_argument("--redis", help="Redis URL (overrides the config)")
    prov.set_defaults(func=_provision)
    scen = sub.add_parser("scenario", help="run a scenario file (days of a contract) in virtual time")
    scen.add_argument("file", help="scenario TOML (e.g. simulators/scenarios/family_month.toml)")
    scen.add_argument("--virtual", action="store_true", help="virtual time against an in-process daemon")
    scen.add_argument("--days", type=float, help="override the scenario's length")
    scen.add_argument("--redis", help="Redis URL (default: a private redis-server in a temporary directory)")
    scen.add_argument("--record", metavar="TRACE", help="write every request sent as a replayable trace (JSON Lines)")
    scen.add_argument("--json", action="store_true")
    scen.set_defaults(func=_scenario)
    rep = sub.add_parser("replay", help="send a JSON Lines trace of session events (docs/simulators.md)")
    rep.add_argument("trace", help="trace file (e.g. simulators/traces/demo_day.jsonl)")
    rep.add_argument("--speed", type=float, default=1.0, help="time scale: 60 plays an hour in a minute")
    _target_args(rep)
    rep.add_argument("--coa-port", type=int, default=3799, help="answer CoA/Disconnect here (0: do not listen)")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=_replay)
    gw = sub.add_parser("gateway", help="a simulated gateway with handsets, in real time, against a running quotad")
    gw.add_argument("--handsets", type=int, default=100, help="handsets = provisioned lines 0..N-1")
    gw.add_argument("--first", type=int, default=0, help="line number of the first handset")
    gw.add_argument("--duration", type=float, default=60.0, help="seconds")
    gw.add_argument("--step", type=float, default=1.0, help="seconds between traffic steps")
    gw.add_argument("--share-3g", type=float, default=0.2, help="share of 3G handsets (3GPP-RAT-Type UTRAN)")
    gw.add_argument("--share-chap", type=float, default=0.3, help="share of handsets using CHAP (else PAP)")
    gw.add_argument("--session-seconds", type=float, help="session length (default: until Session-Timeout)")
    gw.add_argument("--gap-seconds", type=float, default=30.0, help="pause between a handset's sessions")
    gw.add_argument("--interim", type=int, help="Interim-Update period (default: the accept's Acct-Interim-Interval)")
    gw.add_argument("--traffic", default=str(_traffic_file()), help="traffic model file (TOML)")
    gw.add_argument("--seed", type=int, default=1)
    gw.add_argument("--record", metavar="TRACE", help="write every request sent as a replayable trace (JSON Lines)")
    gw.add_argument("--coa-port", type=int, default=3799, help="CoA/Disconnect listener port (RFC 5176)")
    _target_args(gw)
    gw.set_defaults(func=_gateway)
    ld = sub.add_parser("load", help="load test: requests/s, latency percentiles, outcomes (multi-process)")
    ld.add_argument("--rate", type=float, help="open loop: requests/s offered in total")
    ld.add_argument("--window", type=int, help="requests in flight in total (closed loop unless --rate; default 128)")
    ld.add_argument("--duration", type=float, default=10.0, help="seconds")
    ld.add_argument("--mix", default="pap=1", help="request kinds and weights: pap=60,chap=10,acct=30 (auth = pap)")
    ld.add_argument("--lines", type=int, default=10000, help="MSISDNs 8190%%08d below this (quotad-sim provision)")
    ld.add_argument("--processes", type=int, default=2, help="generator processes")
    ld.add_argument("--timeout", type=float, default=2.0, help="seconds before a request counts as a timeout")
    ld.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    ld.add_argument("--json", action="store_true")
    _target_args(ld)
    ld.set_defaults(func=_load, sync=True)
    return parser


async def _gateway(args: argparse.Namespace) -> int:
    from simulators import realtime, trace, wire
    from simulators.gateway import GatewaySettings

    settings = GatewaySettings(
        args.server, args.auth_port, args.acct_port, args.coa_port, wire.Nas(args.nas_ip, args.secret.encode()),
        interim_interval=args.interim,
    )
    fleet = realtime.Fleet(
        args.handsets, args.share_3g, args.share_chap,
        None if args.session_seconds is None else args.session_seconds, args.gap_seconds, args.seed, args.first,
    )
    gateway = await realtime.run(settings, fleet, args.duration, args.step, args.traffic, record=bool(args.record))
    if args.record:
        Path(args.record).write_text(trace.dumps(gateway.recording or []))
    print(realtime.summary(gateway))
    return 0


def _load(args: argparse.Namespace) -> int:
    import json

    from simulators import load

    spec = load.LoadSpec(
        host=args.server, auth_port=args.auth_port, acct_port=args.acct_port, secret=args.secret.encode(),
        mix=load.parse_mix(args.mix), rate=args.rate or 0.0, window=args.window or 128, duration=args.duration,
        lines=args.lines, processes=args.processes, timeout=args.timeout,
    )
    report = load.run(spec, progress=None if args.quiet else sys.stderr)
    print(json.dumps(report.as_dict()) if args.json else load.text(report))
    warnings = load.warnings(report)
    if args.json:  # the text report ends with them
        for warning in warnings:
            print(f"quotad-sim load: warning: {warning}", file=sys.stderr)
    return 1 if warnings else 0  # the run did not measure what was asked


def _traffic_file() -> str:
    from simulators.traffic import DEFAULT_FILE

    return str(DEFAULT_FILE)


def _target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="127.0.0.1", help="quotad's address")
    parser.add_argument("--auth-port", type=int, default=1812)
    parser.add_argument("--acct-port", type=int, default=1813)
    parser.add_argument("--secret", default="testing123", help="the shared secret of this gateway")
    parser.add_argument("--nas-ip", default="127.0.0.1", help="NAS-IP-Address sent (and CoA listener address)")


def main(argv: list[str] | None = None) -> int:
    from quotad.config import ConfigError
    from simulators.load import LoadError
    from simulators.scenario import ScenarioError
    from simulators.trace import TraceError
    from simulators.traffic import TrafficModelError

    args = _parser().parse_args(argv)
    try:
        if getattr(args, "sync", False):  # spawns processes: no event loop in this one
            return int(args.func(args))
        result: Any = asyncio.run(args.func(args))
    except (ConfigError, LoadError, ScenarioError, TraceError, TrafficModelError, OSError) as exc:
        print(f"quotad-sim {args.command}: {exc}", file=sys.stderr)
        return 2
    return int(result)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
