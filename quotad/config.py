"""Typed, validated settings from TOML.

Every setting has a default (the values of the shipped ``config/quotad.toml``), so an empty file
is a working configuration. A bad file stops startup with every bad key and the reason, e.g.
``server.auth_port: must be an integer between 1 and 65535, got 70000``. Unknown keys are errors
too: a typo must not silently fall back to a default. The reading of tables into the dataclasses
below, and the checks of single values, are in configparse.py; the cross-field checks are here.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quotad.configparse import ConfigError, Secret, build, check_ip, check_port
from quotad.publicsafety import settings as publicsafety_settings
from quotad.publicsafety.settings import PublicSafetySettings
from quotad.quota.embedded import APPENDFSYNC

_EMPTY_SECRET = Secret("")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    bind: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    http_port: int = 8080
    http_bind: str = ""  # address of the HTTP port; empty: the same as bind
    http_tls_cert: str = ""  # PEM certificate (chain) and key: the HTTP port serves HTTPS when both are set
    http_tls_key: str = ""
    workers: int = 1
    max_inflight: int = 4096
    rcvbuf_bytes: int = 4 * 1024 * 1024
    duplicate_window: float = 10.0
    log_level: str = "info"
    sample_seconds: float = 60.0
    sample_limit: int = 10000


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = ""
    data_dir: str = "data"
    timeout: float = 2.0
    max_connections: int = 32
    cluster: bool = False
    appendfsync: str = "everysec"  # the embedded Redis's fsync policy: always, everysec or no


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    slice_bytes: int = 10_000_000
    timezone: str = "Asia/Tokyo"
    coupon_unit_bytes: int = 100_000_000
    max_units_per_month: int = 30
    ip_range: str = "100.64.0.0/16"
    lease_seconds: int = 7200
    # The bounds of an accounting report (quota.model.QuotaSettings says what each means).
    max_report_age_seconds: int = 3 * 86400
    max_report_rate_bps: int = 10_000_000_000
    max_report_slack_bytes: int = 50_000_000_000


@dataclass(frozen=True, slots=True)
class CoaSettings:
    """The RFC 5176 client (CoA-Request, Disconnect-Request) that pushes changes to gateways."""

    port: int = 3799  # gateways' CoA port, unless a client sets its own coa_port
    timeout: float = 1.0  # seconds the first attempt waits for an ACK or NAK
    retries: int = 3  # retransmissions after the first attempt (the very same datagram)
    backoff: float = 2.0  # each retransmission waits this many times longer than the one before
    max_timeout: float = 8.0  # ... but never longer than this
    max_pending: int = 10000  # requests outstanding per gateway; beyond, not sent (counted)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    name: str = ""
    address: str = ""
    secret: Secret = _EMPTY_SECRET
    coa_port: int = 0  # 0: coa.port
    coa_secret: Secret = _EMPTY_SECRET  # empty: the same secret as its RADIUS requests


@dataclass(frozen=True, slots=True)
class ApnSettings:
    name: str = ""
    user: str = ""
    password: Secret = _EMPTY_SECRET
    home_networks: tuple[str, ...] = ()
    session_timeout: int = 86400
    idle_timeout: int = 7200
    interim_interval: int = 600


@dataclass(frozen=True, slots=True)
class PlanSettings:
    max_lines: int = 1
    bundle_bytes: int = 0
    low_limit_3day_bytes: int = 366_000_000


@dataclass(frozen=True, slots=True)
class ProfileSettings:
    down_bps: int = 0
    up_bps: int = 0
    attributes: dict[str, str | int] = field(default_factory=dict)


# The API tokens `quotad demo` makes for itself begin with this (quotad/demo.py); a token in a
# configuration file may not, so a demo token is never accepted outside the demo.
DEMO_TOKEN_PREFIX = "quotad-demo-"


@dataclass(frozen=True, slots=True)
class TokenSettings:
    token: Secret = _EMPTY_SECRET
    role: str = "operator"  # "operator" (everything) or "customer" (one contract)
    contract: str = ""  # the customer's contract id


@dataclass(frozen=True, slots=True)
class ApiSettings:
    tokens: tuple[TokenSettings, ...] = ()


@dataclass(frozen=True, slots=True)
class RadsecSettings:
    """RADIUS over TLS (RFC 6614): gateways identified by their client certificate."""

    enabled: bool = False
    port: int = 2083
    cert: str = ""  # the server's PEM certificate (chain)
    key: str = ""  # its private key
    ca: str = ""  # PEM CA certificate(s) client certificates must chain to
    clients: dict[str, str] = field(default_factory=dict)  # gateway name → certificate CN or DNS SAN


def _default_clients() -> tuple[ClientSettings, ...]:
    return (ClientSettings(name="localhost", address="127.0.0.1/32", secret=Secret("testing123")),)


def _default_apns() -> tuple[ApnSettings, ...]:
    return (
        ApnSettings(
            name="iijmio.jp", user="mio@iij", password=Secret("iij"), home_networks=("44010",)
        ),
    )


def _default_plans() -> dict[str, PlanSettings]:
    return {
        "minimum_start": PlanSettings(1, 0, 366_000_000),
        "light_start": PlanSettings(1, 1_000_000_000, 120_000_000),
        "family_share": PlanSettings(3, 1_000_000_000, 366_000_000),
    }


def _profile(name: str, down: int, up: int, exempt: bool = False) -> ProfileSettings:
    attrs: dict[str, str | int] = {
        "Filter-Id": name,
        "Quotad-Speed-Profile": name,
        "Quotad-Rate-Down": down,
        "Quotad-Rate-Up": up,
    }
    if exempt:
        attrs["Quotad-Exempt-Rule"] = "zero-rated"
    return ProfileSettings(down, up, attrs)


def _default_profiles() -> dict[str, ProfileSettings]:
    return {
        "high-lte": _profile("high-lte", 112_500_000, 37_500_000),
        "high-3g": _profile("high-3g", 14_000_000, 5_700_000),
        "low": _profile("low", 200_000, 200_000, exempt=True),
        "restricted": _profile("restricted", 32_000, 32_000, exempt=True),
    }


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    clients: tuple[ClientSettings, ...] = field(default_factory=_default_clients)
    apns: tuple[ApnSettings, ...] = field(default_factory=_default_apns)
    plans: dict[str, PlanSettings] = field(default_factory=_default_plans)
    profiles: dict[str, ProfileSettings] = field(default_factory=_default_profiles)
    api: ApiSettings = field(default_factory=ApiSettings)
    radsec: RadsecSettings = field(default_factory=RadsecSettings)
    publicsafety: PublicSafetySettings = field(default_factory=PublicSafetySettings)
    coa: CoaSettings = field(default_factory=CoaSettings)


# --- loading -----------------------------------------------------------------------------------


def load(path: str | Path) -> Config:
    """Read and validate a TOML file; raise ConfigError naming every bad key."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError([(str(path), "file not found")]) from exc
    except OSError as exc:  # unreadable (permissions), a directory...
        raise ConfigError([(str(path), f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([(str(path), f"not valid TOML: not UTF-8 at byte {exc.start}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(str(path), f"not valid TOML: {exc}")]) from exc
    return from_dict(data)


def from_dict(data: dict[str, Any]) -> Config:
    problems: list[tuple[str, str]] = []
    data = _overlay_catalogs(data)
    config = build(Config, data, "", problems)
    _check(config, problems)
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    return config


def _overlay_catalogs(data: dict[str, Any]) -> dict[str, Any]:
    """``[plans.X]`` / ``[profiles.X]`` change entry X only; each given key replaces the default's.

    So an operator can retune one speed profile without restating the whole catalog.
    """
    merged = dict(data)
    defaults = Config()
    for section in ("plans", "profiles"):
        given = data.get(section)
        if not isinstance(given, dict):
            continue
        table = {name: asdict(entry) for name, entry in getattr(defaults, section).items()}
        for name, entry in given.items():
            table[name] = {**table.get(name, {}), **entry} if isinstance(entry, dict) else entry
        merged[section] = table
    return merged


# --- cross-field checks ------------------------------------------------------------------------


def _check(config: Config, problems: list[tuple[str, str]]) -> None:
    _check_server(config.server, problems)
    _check_redis(config.redis, problems)
    _check_quota(config.quota, problems)
    _check_clients(config.clients, problems)
    _check_apns(config.apns, problems)
    _check_tokens(config.api.tokens, problems)
    _check_radsec(config.radsec, problems)
    publicsafety_settings.check(config.publicsafety, {a.name.lower() for a in config.apns}, problems)
    _check_coa(config.coa, problems)
    if config.radsec.enabled and config.radsec.port == 0 and config.server.workers > 1:
        problems.append(("radsec.port", "several workers share fixed ports: set a RadSec port, not 0"))
    for name, plan in config.plans.items():
        for attr in ("max_lines", "bundle_bytes", "low_limit_3day_bytes"):
            if getattr(plan, attr) < 0:
                problems.append((f"plans.{name}.{attr}", "must not be negative"))
        if plan.max_lines < 1:
            problems.append((f"plans.{name}.max_lines", "must be at least 1"))
    for required in ("high-lte", "high-3g", "low", "restricted"):
        if required not in config.profiles:
            problems.append((f"profiles.{required}", "missing: this speed profile is required (R-20)"))


def _check_server(server: ServerSettings, problems: list[tuple[str, str]]) -> None:
    check_ip(server.bind, "server.bind", problems)
    check_port(problems, "server.auth_port", server.auth_port, allow_zero=True)
    check_port(problems, "server.acct_port", server.acct_port, allow_zero=True)
    check_port(problems, "server.http_port", server.http_port, allow_zero=True)
    if server.http_bind:
        check_ip(server.http_bind, "server.http_bind", problems)
    if bool(server.http_tls_cert) != bool(server.http_tls_key):
        missing = "server.http_tls_key" if server.http_tls_cert else "server.http_tls_cert"
        problems.append((missing, "set both server.http_tls_cert and server.http_tls_key, or neither"))
    if not 1 <= server.workers <= 64:
        problems.append(("server.workers", "must be between 1 and 64"))
    elif server.workers > 1 and 0 in (server.auth_port, server.acct_port, server.http_port):
        problems.append(("server.workers", "several workers share fixed ports: set auth_port, acct_port, http_port"))
    if server.max_inflight < 1:
        problems.append(("server.max_inflight", "must be at least 1"))
    if server.rcvbuf_bytes < 65536:
        problems.append(("server.rcvbuf_bytes", "must be at least 65536"))
    if not 0 < server.duplicate_window <= 300:
        problems.append(("server.duplicate_window", "must be in (0, 300] seconds"))
    if server.sample_seconds < 1:
        problems.append(("server.sample_seconds", "must be at least 1"))
    if server.sample_limit < 1:
        problems.append(("server.sample_limit", "must be at least 1"))
    if server.log_level not in ("debug", "info", "warning", "error"):
        problems.append(("server.log_level", "must be one of debug, info, warning, error"))


def _check_redis(settings: RedisSettings, problems: list[tuple[str, str]]) -> None:
    url = settings.url
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(("redis.url", "must start with redis://, rediss:// or unix:// (or be empty: embedded)"))
    if not url and not settings.data_dir:
        problems.append(("redis.data_dir", "must be set when redis.url is empty (embedded Redis)"))
    if settings.timeout <= 0:
        problems.append(("redis.timeout", "must be positive"))
    if not 1 <= settings.max_connections <= 1024:
        problems.append(("redis.max_connections", "must be between 1 and 1024"))
    if settings.appendfsync not in APPENDFSYNC:
        problems.append(("redis.appendfsync", f"must be one of {', '.join(APPENDFSYNC)}, got {settings.appendfsync!r}"))


def _check_quota(quota: QuotaConfig, problems: list[tuple[str, str]]) -> None:
    if quota.slice_bytes < 1:
        problems.append(("quota.slice_bytes", "must be at least 1"))
    if quota.coupon_unit_bytes < 1:
        problems.append(("quota.coupon_unit_bytes", "must be at least 1"))
    if quota.max_units_per_month < 1:
        problems.append(("quota.max_units_per_month", "must be at least 1"))
    if quota.lease_seconds < 60:
        problems.append(("quota.lease_seconds", "must be at least 60"))
    if quota.max_report_age_seconds < 3600:
        problems.append(("quota.max_report_age_seconds", "must be at least 3600 (an hour)"))
    if quota.max_report_rate_bps < 1_000_000:
        problems.append(("quota.max_report_rate_bps", "must be at least 1000000 (1 Mbit/s)"))
    if not 0 <= quota.max_report_slack_bytes < 1 << 53:
        problems.append(("quota.max_report_slack_bytes", "must be between 0 and 2^53"))
    try:
        net = ipaddress.IPv4Network(quota.ip_range)
        if net.num_addresses < 4:
            problems.append(("quota.ip_range", "must hold at least 4 addresses"))
    except ValueError as exc:
        problems.append(("quota.ip_range", f"not an IPv4 network: {exc}"))
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(quota.timezone)
    except Exception:
        problems.append(("quota.timezone", f"unknown time zone {quota.timezone!r}"))


def _check_clients(clients: tuple[ClientSettings, ...], problems: list[tuple[str, str]]) -> None:
    for i, client in enumerate(clients):
        key = f"clients[{i}]"
        try:
            ipaddress.ip_network(client.address, strict=False)
        except ValueError:
            problems.append((f"{key}.address", f"not an address or CIDR: {client.address!r}"))
        if not client.secret:
            problems.append((f"{key}.secret", "must not be empty"))
        check_port(problems, f"{key}.coa_port", client.coa_port, allow_zero=True)


def _check_apns(apns: tuple[ApnSettings, ...], problems: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for i, apn in enumerate(apns):
        key = f"apns[{i}]"
        if not apn.name:
            problems.append((f"{key}.name", "must not be empty"))
        if apn.name.lower() in seen:
            problems.append((f"{key}.name", f"duplicate APN {apn.name!r}"))
        seen.add(apn.name.lower())
        if not apn.user:
            problems.append((f"{key}.user", "must not be empty"))
        for attr in ("session_timeout", "idle_timeout", "interim_interval"):
            if getattr(apn, attr) < 0:
                problems.append((f"{key}.{attr}", "must not be negative"))
        for net in apn.home_networks:
            if not (net.isdigit() and len(net) in (5, 6)):
                problems.append((f"{key}.home_networks", f"not an MCC-MNC: {net!r}"))


def _check_coa(coa: CoaSettings, problems: list[tuple[str, str]]) -> None:
    check_port(problems, "coa.port", coa.port)
    if not 0 < coa.timeout <= 60:
        problems.append(("coa.timeout", f"must be in (0, 60] seconds, got {coa.timeout}"))
    if not 0 <= coa.retries <= 10:
        problems.append(("coa.retries", f"must be between 0 and 10, got {coa.retries}"))
    if not 1 <= coa.backoff <= 10:
        problems.append(("coa.backoff", f"must be between 1 and 10, got {coa.backoff}"))
    if not coa.timeout <= coa.max_timeout <= 300:
        problems.append(("coa.max_timeout", f"must be between coa.timeout and 300 seconds, got {coa.max_timeout}"))
    if not 1 <= coa.max_pending <= 1_000_000:
        problems.append(("coa.max_pending", f"must be between 1 and 1000000, got {coa.max_pending}"))


def _check_radsec(radsec: RadsecSettings, problems: list[tuple[str, str]]) -> None:
    check_port(problems, "radsec.port", radsec.port, allow_zero=True)
    for name, subject in radsec.clients.items():
        if not subject:
            problems.append((f"radsec.clients.{name}", "must name the certificate's CN or DNS name"))
    if not radsec.enabled:
        return
    for key in ("cert", "key", "ca"):
        if not getattr(radsec, key):
            problems.append((f"radsec.{key}", "must be set when radsec is enabled"))
    if not radsec.clients:
        problems.append(("radsec.clients", "must map at least one gateway to its certificate when radsec is enabled"))


def _check_tokens(tokens: tuple[TokenSettings, ...], problems: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for i, tok in enumerate(tokens):
        key = f"api.tokens[{i}]"
        if len(tok.token) < 16:
            problems.append((f"{key}.token", "must be at least 16 characters"))
        if str(tok.token).startswith(DEMO_TOKEN_PREFIX):
            problems.append((f"{key}.token", f"a {DEMO_TOKEN_PREFIX}… token is made by `quotad demo` for itself "
                                             "and accepted nowhere else: choose another token"))
        if str(tok.token) in seen:
            problems.append((f"{key}.token", "duplicate token"))
        seen.add(str(tok.token))
        if tok.role not in ("operator", "customer"):
            problems.append((f"{key}.role", f"must be operator or customer, got {tok.role!r}"))
        if tok.role == "customer" and not tok.contract:
            problems.append((f"{key}.contract", "a customer token must name its contract"))
