"""Virtual-time scenarios: days of a contract's life in seconds, against an in-process daemon.

A scenario file (TOML, see simulators/scenarios/*_month.toml and docs/simulators.md) names a
consumer contract, its lines (radio, PAP/CHAP, APN, how they use sessions), the operator actions
on given days (charge coupons, flip a coupon switch, suspend, resume), requests to quotad's HTTP
API on given days (public-safety contracts are provisioned and changed this way) with the answers
expected, attach checks (is a SIM accepted at that instant, or refused and why), and how long to
run. The runner starts quotad's Daemon on a SettableClock with its own embedded Redis, a
simulated gateway on real UDP sockets, and then steps the clock: each step the gateway moves the
handsets' traffic and sends what is due, and the daemon's CoAs are awaited before the next step.
Nothing sleeps, so a month takes as long as the requests it needs.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import socket
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from quotad import config as cfg
from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.quota import keys as k
from quotad.quota.calendar import day_key
from quotad.quota.model import ContractView, LineRef
from simulators.gateway import Event, Gateway, GatewaySettings, SessionPlan
from simulators.handset import Handset
from simulators.trace import TraceEvent
from simulators.traffic import DEFAULT_FILE, load_models
from simulators.wire import Nas

DAY = 86400.0
SECRET = b"testing123"  # the in-process daemon's only client is the simulated gateway
CONSUMER_APN = "iijmio.jp"
METHODS = ("GET", "POST", "PUT", "DELETE")


class ScenarioError(ValueError):
    """A bad scenario file; the message names the key."""


@dataclass(frozen=True, slots=True)
class LineSpec:
    msisdn: str
    imsi: str
    iccid: str
    rat: str = "lte"
    auth: str = "pap"
    session_hours: float | None = None  # None: stay attached until the Session-Timeout
    gap_minutes: float = 1.0
    model: str = ""  # traffic model name; empty: the radio's ("lte" or "3g")
    apn: str = CONSUMER_APN  # an [[apns]] name of quotad's config; one of publicsafety.apns: a public-safety SIM


@dataclass(frozen=True, slots=True)
class Action:
    day: float  # days after the scenario's start
    kind: str  # charge | coupon_off | coupon_on | suspend | resume
    units: int = 0
    msisdn: str = ""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """An operator's request to quotad's HTTP API at a given time, and the answer expected."""

    day: float  # days after the scenario's start
    method: str
    path: str  # e.g. /v1/public-safety/contracts
    body: dict[str, Any] | None = None
    status: int | None = None  # the status expected; None: any 2xx
    expect: dict[str, Any] | None = None  # part of the JSON answer expected (matches())
    note: str = ""


@dataclass(frozen=True, slots=True)
class AttachCheck:
    """An Access-Request for a SIM at a given time (besides its handset's own sessions) and the
    answer expected: "accept", or the Reply-Message of the reject."""

    day: float
    attach: str  # the SIM's MSISDN (one of the scenario's lines)
    expect: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a request or an attach check got, and whether that is what the scenario expects."""

    at: float
    what: str  # "PUT /v1/...", "attach 817000002001"
    ok: bool
    detail: str  # the answer (status, error, Reply-Message) and what differed
    note: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: float  # epoch seconds
    days: float
    contract_id: str  # the consumer contract ("": none, e.g. public-safety lines only)
    plan: str
    contract_start: dt.date | None
    lines: tuple[LineSpec, ...]
    actions: tuple[Action, ...] = ()
    requests: tuple[ApiRequest, ...] = ()
    checks: tuple[AttachCheck, ...] = ()
    step_seconds: float = 300.0
    interim_interval: int = 3600
    seed: int = 1
    initial_units: int = 0
    traffic_file: Path = DEFAULT_FILE
    quotad_config: Path | None = None  # quotad's settings (plans, slice size, profiles); None: defaults


@dataclass(slots=True)
class DayReport:
    day: int
    date: str
    used: dict[str, int]  # msisdn → octets moved that day
    slices: int  # slices used up and asked for again (Authorize-Only)
    pool: int | None  # the consumer contract's, at the day's end (before the next day's maintenance)
    speeds: dict[str, str]  # msisdn → the line's speed class ("" before its first attach)


@dataclass(slots=True)
class Report:
    scenario: str
    days: list[DayReport] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    final: ContractView | None = None  # the contract at the end (every session stopped)
    final_at: float = 0.0
    trace: list[TraceEvent] = field(default_factory=list)  # what the gateway sent (with record=True)
    initial_pool: int = 0  # after provisioning, before any traffic
    counted: dict[str, tuple[int, int]] = field(default_factory=dict)  # msisdn → quotad's (high, low) octets
    used: dict[str, int] = field(default_factory=dict)  # msisdn → octets moved over the run
    exempt: dict[str, int] = field(default_factory=dict)  # msisdn → the zero-rated part of it
    coa: dict[str, int] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)  # every request and attach check, in time order

    @property
    def failed(self) -> list[CheckResult]:
        """The requests and attach checks whose answer was not the one expected."""
        return [c for c in self.checks if not c.ok]


def _table(kind: type, entries: Any, key: str) -> tuple[Any, ...]:
    if not isinstance(entries, list):
        raise ScenarioError(f"{key}: must be an array of tables ([[{key}]])")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(kind(**entry))
        except TypeError as exc:
            raise ScenarioError(f"{key}[{i}]: {exc}") from exc
    return tuple(out)


def _check_requests(requests: tuple[ApiRequest, ...]) -> None:
    for i, r in enumerate(requests):
        if r.method not in METHODS:
            raise ScenarioError(f"requests[{i}].method: one of {', '.join(METHODS)}")
        if not r.path.startswith("/v1/"):
            raise ScenarioError(f"requests[{i}].path: a path of the API, /v1/...")
        if r.body is not None and not isinstance(r.body, dict):
            raise ScenarioError(f"requests[{i}].body: a table (the JSON object sent)")


def load(path: Path | str) -> Scenario:
    """Parse a scenario file (ScenarioError naming the key when bad)."""
    data = tomllib.loads(Path(path).read_text())
    try:
        contract = data.get("contract")
        start = dt.datetime.fromisoformat(str(data["start"]))
        lines = _table(LineSpec, data["lines"], "lines")
        actions = _table(Action, data.get("actions", []), "actions")
        requests = _table(ApiRequest, data.get("requests", []), "requests")
        checks = _table(AttachCheck, data.get("checks", []), "checks")
        contract_id, plan, start_date = "", "", None
        if contract is not None:
            contract_id, plan = str(contract["id"]), str(contract["plan"])
            start_date = dt.date.fromisoformat(str(contract["start_date"]))
    except KeyError as exc:
        raise ScenarioError(f"{exc.args[0]}: missing") from exc
    if start.tzinfo is None:
        raise ScenarioError("start: needs a UTC offset, e.g. 2026-11-01T00:00:00+09:00")
    if actions and contract is None:
        raise ScenarioError("actions: they change the consumer contract; add a [contract]")
    _check_requests(requests)
    known = {line.msisdn for line in lines}
    for i, check in enumerate(checks):
        if check.attach not in known:
            raise ScenarioError(f"checks[{i}].attach: {check.attach} is not one of the lines")
    traffic = data.get("traffic_file")
    quotad_config = data.get("quotad_config")
    return Scenario(
        name=str(data.get("name", Path(path).stem)), start=start.timestamp(), days=float(data.get("days", 30)),
        contract_id=contract_id, plan=plan, contract_start=start_date, lines=lines, actions=actions,
        requests=requests, checks=checks,
        step_seconds=float(data.get("step_seconds", 300)), interim_interval=int(data.get("interim_interval", 3600)),
        seed=int(data.get("seed", 1)), initial_units=int((contract or {}).get("units", 0)),
        traffic_file=Path(path).parent / traffic if traffic else DEFAULT_FILE,
        quotad_config=Path(path).parent / quotad_config if quotad_config else None,
    )


def matches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """How actual differs from expected (empty: it matches). A table matches an object that has
    at least its keys, each matching; an array matches an array of the same length, item by item;
    anything else must be equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'answer'}: {json.dumps(actual)} is not an object"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing".lstrip("."))
            else:
                out += matches(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where.lstrip('.')}: {json.dumps(actual)}, expected {len(expected)} items"]
        pairs = enumerate(zip(expected, actual, strict=True))
        return [d for i, (e, a) in pairs for d in matches(e, a, f"{where}[{i}]")]
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{where.lstrip('.')}: {json.dumps(actual)}, expected {json.dumps(expected)}"]
    return []


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_config(redis_url: str, data_dir: str, coa_port: int, base: cfg.Config | None = None,
                  token: str = "") -> cfg.Config:
    """quotad's settings (the shipped defaults unless given) on free loopback ports, one worker,
    the simulated gateway as its only client, quiet logs, the run's own Redis, no RadSec or TLS;
    the API's one token is ``token`` (operator; none if empty)."""
    base = base or cfg.Config()
    gateway = cfg.ClientSettings(name="quotad-sim", address="127.0.0.1/32", secret=cfg.Secret(SECRET.decode()),
                                 coa_port=coa_port)
    tokens = (cfg.TokenSettings(token=cfg.Secret(token), role="operator"),) if token else ()
    return replace(
        base,
        clients=(gateway,),
        api=replace(base.api, tokens=tokens),
        radsec=replace(base.radsec, enabled=False),
        server=replace(base.server, bind="127.0.0.1", auth_port=0, acct_port=0, http_port=0, http_bind="",
                       http_tls_cert="", http_tls_key="", workers=1, log_level="warning"),
        redis=replace(base.redis, url=redis_url, data_dir=data_dir),
    )


async def run(
    scenario: Scenario, redis_url: str = "", progress: Callable[[DayReport], None] | None = None, record: bool = False
) -> Report:
    """Run the scenario in virtual time; ``redis_url`` empty starts a private redis-server. With
    ``record`` the report holds the trace of every request the gateway sent (virtual seconds)."""
    coa_port = _free_udp_port()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="quotad-sim-") as tmp:
        base = cfg.load(scenario.quotad_config) if scenario.quotad_config else None
        config = daemon_config(redis_url, tmp, coa_port, base, token)
        _check_apns(scenario, config)
        # The midnight speed walk runs in virtual time: _run ticks it after each step.
        daemon = Daemon(config, clock=SettableClock(scenario.start), speed_timer_seconds=0)
        await daemon.start()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}",
                                             headers={"Authorization": f"Bearer {token}"}) as http:
                return await _run(scenario, daemon, coa_port, progress, record, http)
        finally:
            await daemon.stop()


def _public_safety(line: LineSpec, config: cfg.Config) -> bool:
    return line.apn.lower() in {name.lower() for name in config.publicsafety.apns}


def _check_apns(scenario: Scenario, config: cfg.Config) -> None:
    names = {apn.name.lower() for apn in config.apns}
    for i, line in enumerate(scenario.lines):
        if line.apn.lower() not in names:
            raise ScenarioError(f"lines[{i}].apn: {line.apn!r} is not an [[apns]] entry of quotad's config")
        if not _public_safety(line, config) and not scenario.contract_id:
            raise ScenarioError(f"lines[{i}]: a consumer SIM needs the scenario's [contract]")


async def _provision(scenario: Scenario, daemon: Daemon) -> None:
    """The consumer contract and its lines (public-safety lines come from the API requests)."""
    store, now = daemon.store, scenario.start
    assert store is not None
    if not scenario.contract_id or scenario.contract_start is None:
        return
    await store.provisioning.create_contract(scenario.contract_id, scenario.plan, scenario.contract_start, now)
    for line in scenario.lines:
        if not _public_safety(line, daemon.config):
            await store.provisioning.add_line(scenario.contract_id, line.msisdn, line.iccid, line.imsi, "nano", False,
                                              now)
    if scenario.initial_units:
        await store.provisioning.charge(scenario.contract_id, scenario.initial_units, "scenario", now)


def _gateway(scenario: Scenario, daemon: Daemon, coa_port: int, clock: SettableClock) -> Gateway:
    settings = GatewaySettings(
        auth_port=daemon.auth_port, acct_port=daemon.acct_port, coa_port=coa_port,
        nas=Nas(secret=SECRET), interim_interval=scenario.interim_interval,
    )
    gateway = Gateway(settings, clock.now)
    models = load_models(scenario.traffic_file)
    apns = {apn.name.lower(): apn for apn in daemon.config.apns}
    for i, line in enumerate(scenario.lines):
        apn = apns[line.apn.lower()]  # the gateway's APN configuration: its RADIUS credentials
        handset = Handset(line.msisdn, line.imsi, f"35349000{i:08d}", rat=line.rat, auth=line.auth,
                          apn=apn.name.encode(), user=apn.user.encode(), password=str(apn.password).encode())
        hours = line.session_hours
        plan = SessionPlan(None if hours is None else hours * 3600, line.gap_minutes * 60)
        model = line.model or line.rat
        if model not in models:
            raise ScenarioError(f"lines[{i}].model: {model!r} is not in {scenario.traffic_file}")
        gateway.add(handset, models[model], seed=scenario.seed * 1000 + i, plan=plan)
    return gateway


Item = Action | ApiRequest | AttachCheck


def _timeline(scenario: Scenario) -> list[Item]:
    """Actions, requests and attach checks by time (at the same time in that order, each in file order)."""
    kinds: tuple[tuple[Item, ...], ...] = (scenario.actions, scenario.requests, scenario.checks)
    order = [(item.day, n, i, item) for n, items in enumerate(kinds) for i, item in enumerate(items)]
    return [item for *_, item in sorted(order, key=lambda x: x[:3])]


async def _run(
    scenario: Scenario, daemon: Daemon, coa_port: int, progress: Callable[[DayReport], None] | None, record: bool,
    http: aiohttp.ClientSession,
) -> Report:
    clock = daemon.clock
    assert isinstance(clock, SettableClock) and daemon.store is not None and daemon.sessions is not None
    assert daemon.speed_timer is not None
    await _provision(scenario, daemon)
    gateway = _gateway(scenario, daemon, coa_port, clock)
    gateway.recording = [] if record else None
    await gateway.start()
    report = Report(scenario.name)
    if scenario.contract_id:
        report.initial_pool = (await daemon.store.views.contract_view(scenario.contract_id, clock.now())).pool
    pending = _timeline(scenario)
    end = scenario.start + scenario.days * DAY
    day_end = scenario.start + DAY
    mark = _Mark.take(gateway)
    try:
        while clock.now() < end:
            clock.advance(scenario.step_seconds)
            while pending and scenario.start + pending[0].day * DAY <= clock.now():
                item = pending.pop(0)
                if isinstance(item, ApiRequest):
                    report.checks.append(await _request(item, http, clock.now()))
                elif isinstance(item, AttachCheck):
                    report.checks.append(await _attach_check(item, gateway, clock.now()))
                else:
                    await _apply(item, scenario, daemon, gateway)
            await daemon.speed_timer.tick(clock.now())  # a Japan midnight passed: its walk
            await gateway.tick(clock.now(), scenario.step_seconds)
            await daemon.sessions.drain(5.0)
            await gateway.settle()
            if clock.now() >= day_end:
                day = await _day_report(scenario, daemon, gateway, mark, len(report.days) + 1)
                report.days.append(day)
                if progress is not None:
                    progress(day)
                mark = _Mark.take(gateway)
                day_end += DAY
        await gateway.stop_all(clock.now())  # the last counters reach quotad
    finally:
        await gateway.close()
    report.events = gateway.events
    report.trace = gateway.recording or []
    report.final_at = clock.now()
    if scenario.contract_id:
        report.final = await daemon.store.views.contract_view(scenario.contract_id, clock.now())
    report.coa = dict(gateway.dynauth_counts)
    report.used = {d.handset.msisdn: d.handset.lifetime_octets for d in gateway.devices}
    report.exempt = {d.handset.msisdn: d.handset.lifetime_exempt for d in gateway.devices}
    report.counted = await _counted(scenario, daemon, end)
    return report


async def _request(req: ApiRequest, http: aiohttp.ClientSession, now: float) -> CheckResult:
    """Send one request to the daemon's API; the answer checked against the scenario's expectation."""
    async with http.request(req.method, req.path, json=req.body) as resp:
        text = await resp.text()
    try:
        answer: Any = json.loads(text)
    except ValueError:
        answer = text
    problems = []
    if resp.status != req.status if req.status is not None else not 200 <= resp.status < 300:
        problems.append(f"status {resp.status}, expected {req.status or '2xx'}")
    if req.expect is not None:
        problems += matches(req.expect, answer)
    detail = f"{resp.status}"
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        detail += f" {error.get('code')} (field {error.get('field')}, rule {error.get('rule')})"
    elif isinstance(answer, dict) and "effective_month" in answer:
        detail += f" effective_month {answer['effective_month']}"
    if problems:
        detail += ": " + "; ".join(problems)
    return CheckResult(now, f"{req.method} {req.path}", not problems, detail, req.note)


async def _attach_check(check: AttachCheck, gateway: Gateway, now: float) -> CheckResult:
    accepted, said = await gateway.probe_attach(check.attach, now)
    got = "accept" if accepted else said
    detail = f"accept ({said})" if accepted else f"reject: {said}"
    ok = got == check.expect
    if not ok:
        detail += f", expected {check.expect}"
    return CheckResult(now, f"attach {check.attach}", ok, detail, check.note)


async def _refs(scenario: Scenario, daemon: Daemon) -> dict[str, LineRef]:
    """The contract of each line that exists, by its number's index key (consumer and public-safety)."""
    assert daemon.store is not None
    out = {}
    for line in scenario.lines:
        raw = await daemon.store.client.get(k.msisdn_index(line.msisdn))
        found = k.parse_index(raw.decode() if isinstance(raw, bytes) else str(raw)) if raw is not None else None
        if found is not None:
            out[line.msisdn] = LineRef(*found)
    return out


async def _counted(scenario: Scenario, daemon: Daemon, end: float) -> dict[str, tuple[int, int]]:
    """What quotad recorded per line over the run's Japan days (R-35 usage, high and low apart)."""
    assert daemon.store is not None
    days = sorted({day_key(t, daemon.config.quota.timezone) for t in _every_day(scenario.start, end)})
    refs = await _refs(scenario, daemon)
    out = {}
    for line in scenario.lines:
        ref = refs.get(line.msisdn)
        rows = await daemon.store.views.line_usage(ref, days) if ref is not None else []
        out[line.msisdn] = (sum(r.high for r in rows), sum(r.low for r in rows))
    return out


def _every_day(start: float, end: float) -> list[float]:
    return [start + i * DAY for i in range(int((end - start) // DAY) + 1)] + [end]


@dataclass(slots=True)
class _Mark:
    """Totals at the start of a day, to report the day's share."""

    octets: dict[str, int]
    events: int

    @classmethod
    def take(cls, gateway: Gateway) -> _Mark:
        return cls({d.handset.msisdn: d.handset.lifetime_octets for d in gateway.devices}, len(gateway.events))


async def _day_report(scenario: Scenario, daemon: Daemon, gateway: Gateway, mark: _Mark, n: int) -> DayReport:
    assert daemon.store is not None
    now = daemon.clock.now()
    pool = None
    if scenario.contract_id:
        pool = (await daemon.store.views.contract_view(scenario.contract_id, now - 1)).pool
    used = {d.handset.msisdn: d.handset.lifetime_octets - mark.octets[d.handset.msisdn] for d in gateway.devices}
    new_events = gateway.events[mark.events:]
    slices = sum(1 for e in new_events if e.kind == "slice")
    jst = dt.timezone(dt.timedelta(hours=9))
    date = dt.datetime.fromtimestamp(now - 1, jst).date().isoformat()
    speeds = {}
    for msisdn, ref in (await _refs(scenario, daemon)).items():
        speed = await daemon.store.client.hget(k.ContractKeys(ref.contract_id).line(msisdn), "speed")
        speeds[msisdn] = speed.decode() if isinstance(speed, bytes) else speed or ""
    return DayReport(n, date, used, slices, pool, speeds)


async def _apply(action: Action, scenario: Scenario, daemon: Daemon, gateway: Gateway) -> None:
    store, sessions, now = daemon.store, daemon.sessions, daemon.clock.now()
    assert store is not None and sessions is not None
    refs = [LineRef(scenario.contract_id, ln.msisdn) for ln in scenario.lines if not _public_safety(ln, daemon.config)]
    targets = [r for r in refs if not action.msisdn or r.msisdn == action.msisdn]
    if action.kind == "charge":
        await store.provisioning.charge(scenario.contract_id, action.units, "scenario", now)
        event = "charge"
    elif action.kind in ("coupon_on", "coupon_off"):
        for ref in targets:
            await store.provisioning.set_coupon(ref, action.kind == "coupon_on", now)
        event = "coupon"
    elif action.kind in ("suspend", "resume"):
        for ref in targets:
            await store.provisioning.set_status(ref, "suspended" if action.kind == "suspend" else "active", now)
        event = action.kind
    else:
        raise ScenarioError(f"actions: unknown kind {action.kind!r}")
    detail = f"{action.units} units" if action.kind == "charge" else ""
    gateway.events.append(Event(now, action.msisdn or "*", f"operator {action.kind}", detail))
    for ref in targets:
        await sessions.on_line_change(ref, event)


def summary(report: Report) -> dict[str, Any]:
    """The report as plain data (``--json``)."""
    final = report.final
    return {
        "scenario": report.scenario,
        "days": [
            {"day": d.day, "date": d.date, "used": d.used, "slices": d.slices, "pool": d.pool, "speeds": d.speeds}
            for d in report.days
        ],
        "events": [{"at": e.at, "msisdn": e.msisdn, "kind": e.kind, "detail": e.detail}
                   for e in report.events if e.kind != "slice"],
        "coa": report.coa,
        "used": report.used,
        "zero_rated": report.exempt,
        "counted": {m: {"high": hi, "low": lo} for m, (hi, lo) in report.counted.items()},
        "pool_left": final.pool if final else None,
        "lines": {ln.msisdn: {"held": ln.held, "speed": ln.speed, "overrun": ln.overrun} for ln in final.lines}
        if final else {},
        "checks": [{"at": c.at, "what": c.what, "ok": c.ok, "detail": c.detail, "note": c.note}
                   for c in report.checks],
        "failed": len(report.failed),
    }
