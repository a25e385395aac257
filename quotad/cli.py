"""`quotad serve | demo | check-config | redis-status | provision ...`: the command line.

Argument parsing, and the thin glue of each command: loading and checking the config file (and
warning when other users may read its secrets), running the daemon's event loop, and the
``provision`` commands, which call the quota store directly. The work itself lives in app,
status and quota.store."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import stat
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from quotad import config as cfg
from quotad import log


def _load_config(path: str | None) -> cfg.Config:
    return cfg.load(path) if path else cfg.Config()


_SECRET_KEYS = ("secret", "password", "token")


def _secrets_in(data: object, prefix: str = "") -> list[str]:
    """Keys of a parsed TOML document that hold secrets (a Redis URL with a password counts)."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}{key}"
            if isinstance(value, str) and value and (key in _SECRET_KEYS or (key == "url" and "@" in value)):
                found.append(name)
            found += _secrets_in(value, name + ".")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found += _secrets_in(item, f"{prefix.rstrip('.')}[{i}].")
    return found


def permission_warning(path: str | None) -> str | None:
    """Why a config file is unsafe: it holds secrets and every user of the host may read it."""
    if not path:
        return None
    try:
        mode = os.stat(path).st_mode
        if not mode & stat.S_IROTH:
            return None
        keys = _secrets_in(tomllib.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return None  # loading reports an unreadable or invalid file
    if not keys:
        return None
    return (f"{path} holds secrets ({', '.join(keys)}) and is readable by every user (mode {mode & 0o777:o}): "
            f"chmod 600 {path} (or 640 with a group quotad runs in)")


def _warn_permissions(path: str | None, to_log: bool = True) -> None:
    message = permission_warning(path)
    if message is None:
        return
    print(f"warning: {message}", file=sys.stderr)
    if to_log:
        log.get("quotad.cli").warning("config_readable_by_others", path=str(path), message=message)


def _run_daemon(coro: Awaitable[Any]) -> int:
    """Run the daemon; a setting refused at start (e.g. TLS files) exits 2 naming it; 1 when the
    embedded Redis could not be kept running."""
    try:
        code = run_loop(coro)
    except cfg.ConfigError as exc:
        for key, reason in exc.problems:
            print(f"config error: {key}: {reason}", file=sys.stderr)
        return 2
    return int(code or 0)


def _check(path: str | None) -> cfg.Config:
    """Load and fully validate a config, or exit 2 naming every bad key."""
    from quotad import app
    from quotad.aaa.profiles import ProfileError

    try:
        config = _load_config(path)
        app.validate(config)
    except cfg.ConfigError as exc:
        for key, reason in exc.problems:
            print(f"config error: {key}: {reason}", file=sys.stderr)
        raise SystemExit(2) from exc
    except ProfileError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    return config


def run_loop(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept for odd platforms
        return asyncio.run(coro)  # type: ignore[arg-type]


def cmd_serve(args: argparse.Namespace) -> int:
    from quotad import reload

    reload.hold_sighup()  # until the reload handler is in place, SIGHUP must not end the process
    try:
        workers = _load_config(args.config).server.workers
    except cfg.ConfigError:
        workers = 1  # _check reports it
    if workers > 1:
        from quotad import workers as wk

        metrics_dir = wk.prepare_multiprocess_metrics()  # before prometheus_client is imported
        config = _check(args.config)
        log.setup(config.server.log_level)
        _warn_permissions(args.config)
        return wk.Supervisor(config, workers, metrics_dir, args.config).run()
    from quotad import app

    config = _check(args.config)
    log.setup(config.server.log_level)
    _warn_permissions(args.config)
    return _run_daemon(app.run(config, reloader=reload.Reloader(args.config, config, app.validate)))


def cmd_demo(args: argparse.Namespace) -> int:
    from quotad import app, demo, reload

    reload.hold_sighup()
    config = _check(args.config)
    log.setup(config.server.log_level)
    _warn_permissions(args.config)
    single = replace(config, server=replace(config.server, workers=1))  # the demo runs one process
    tokens = demo.tokens(config.redis.data_dir)  # added here only: no config file may hold one

    def with_tokens(c: cfg.Config) -> cfg.Config:
        return demo.with_tokens(c, tokens)

    # The reloader compares the file with the file (server.workers as written), not with `single`;
    # the demo's tokens are added to each version, so a reload keeps them.
    reloader = reload.Reloader(args.config, with_tokens(config), app.validate, extend=with_tokens)
    return _run_daemon(app.run(with_tokens(single), before_serving=[demo.announcer(tokens)], reloader=reloader))


def cmd_check_config(args: argparse.Namespace) -> int:
    _check(args.path)
    _warn_permissions(args.path, to_log=False)
    print(f"{args.path}: ok")
    return 0


def redis_url(config: cfg.Config) -> str:
    if config.redis.url:
        return config.redis.url
    sock = Path(config.redis.data_dir).resolve() / "redis.sock"
    if not sock.exists():
        raise SystemExit(f"redis.url is empty and no embedded Redis runs at {sock}: start `quotad serve` first")
    return f"unix://{sock}"


async def _with_store(config: cfg.Config, action: Callable[[Any], Awaitable[Any]]) -> Any:
    import redis.asyncio as aioredis

    from quotad import app
    from quotad.quota.store import QuotaStore

    client = aioredis.Redis.from_url(redis_url(config))
    store = QuotaStore(client, app.quota_settings_from(config), app.catalog_from(config))
    try:
        await store.load_scripts()
        return await action(store)
    finally:
        await client.aclose()


def cmd_redis_status(args: argparse.Namespace) -> int:
    import redis.asyncio as aioredis

    from quotad import app, status
    from quotad.quota.store import QuotaStore

    config = _check(args.config)
    if config.redis.cluster:
        print("redis-status: redis.cluster is true; it reports on a single Redis server only", file=sys.stderr)
        return 2
    url = redis_url(config)
    print(f"redis: {status.masked(url)} ({'external' if config.redis.url else 'embedded'})")

    async def run() -> tuple[list[str], int]:
        timeout = config.redis.timeout
        client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        store = QuotaStore(client, app.quota_settings_from(config), app.catalog_from(config))
        try:
            return await status.report(client, store.runner.shas())
        finally:
            await client.aclose()

    lines, code = run_loop(run())
    print("\n".join(lines))
    return int(code)


def start_date(given: str | None, now: float, tz: str) -> dt.date:
    """The contract's start date: the one given (YYYY-MM-DD), else today's date in the calendar's
    time zone (``quota.timezone``, Japan), not the host's: a UTC host is nine hours behind Japan,
    and between 00:00 and 09:00 Japan time its date is the day before (on the 1st, the month
    before, whose pro-rated bundle R-10 would grant)."""
    from quotad.quota import calendar as cal

    return dt.date.fromisoformat(given) if given else cal.local(now, tz).date()


def cmd_provision(args: argparse.Namespace, now: float | None = None) -> int:
    """``now``: the instant of the changes (default: the system clock); tests pass a fixed one."""
    from quotad.quota.errors import QuotaError

    config = _check(args.config)
    at = time.time() if now is None else now

    async def action(store: Any) -> Any:
        if args.what == "contract":
            start = start_date(args.start, at, config.quota.timezone)
            return await store.provisioning.create_contract(args.id, args.plan, start, at)
        if args.what == "line":
            return await store.provisioning.add_line(args.contract, args.msisdn, args.iccid, args.imsi,
                                                     args.card_type, args.voice, at)
        return await store.provisioning.charge(args.contract, args.units, args.who, at)

    try:
        result = run_loop(_with_store(config, action))
    except QuotaError as exc:
        print(f"refused: {exc.field}: {exc.message} ({exc.rule})", file=sys.stderr)
        return 1
    print(f"ok{': ' + repr(result) if result is not None else ''}")
    return 0


def _parser() -> argparse.ArgumentParser:
    # Raw: --version's line as it is, not wrapped at the terminal's width (a plain build's is ~100 characters).
    parser = argparse.ArgumentParser(prog="quotad", description="Policy and quota server (RADIUS + Redis).",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"quotad {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", help="TOML file (default: built-in defaults = config/quotad.toml)")
    serve.set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="run the daemon on embedded defaults with a demo data set")
    demo.add_argument("--config", help="TOML file (default: built-in defaults)")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check-config", help="validate a config file without starting")
    check.add_argument("path")
    check.set_defaults(func=cmd_check_config)
    rstatus = sub.add_parser("redis-status", help="report on the configured Redis (read-only)")
    rstatus.add_argument("--config", help="TOML file (its redis settings are used)")
    rstatus.set_defaults(func=cmd_redis_status)
    _provision_parser(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from quotad.quota import resp
    from quotad.radius import packet

    try:
        installed = version("quotad")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
        installed = "unknown (not installed)"
    return f"{installed} (RADIUS codec: {packet.IMPLEMENTATION}, RESP encoder: {resp.IMPLEMENTATION})"


def _provision_parser(sub: Any) -> None:
    prov = sub.add_parser("provision", help="create contracts and lines, buy coupons")
    prov.add_argument("--config", help="TOML file (its redis settings are used)")
    what = prov.add_subparsers(dest="what", required=True)
    contract = what.add_parser("contract")
    contract.add_argument("--id", required=True)
    contract.add_argument("--plan", required=True)
    contract.add_argument("--start", help="YYYY-MM-DD (default: today in quota.timezone, Japan)")
    line = what.add_parser("line")
    line.add_argument("--contract", required=True)
    line.add_argument("--msisdn", required=True)
    line.add_argument("--iccid", required=True)
    line.add_argument("--imsi", required=True)
    line.add_argument("--card-type", default="nano", choices=["standard", "micro", "nano", "esim"])
    line.add_argument("--voice", action="store_true")
    charge = what.add_parser("charge")
    charge.add_argument("--contract", required=True)
    charge.add_argument("--units", type=int, required=True)
    charge.add_argument("--who", default="cli")
    prov.set_defaults(func=cmd_provision)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
