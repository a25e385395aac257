"""Virtual-time scenarios: days of a contract's life in seconds, against an in-process daemon.

A scenario file (TOML, see simulators/scenarios/family_month.toml and docs/simulators.md) names a
contract, its lines (radio, PAP/CHAP, how they use sessions), the operator actions on given days
(charge coupons, flip a coupon switch, suspend, resume) and how long to run. The runner starts
quotad's Daemon on a SettableClock with its own embedded Redis, a simulated gateway on real UDP
sockets, and then steps the clock: each step the gateway moves the handsets' traffic and sends
what is due, and the daemon's CoAs are awaited before the next step. Nothing sleeps, so a month
takes as long as the requests it needs.
"""

from __future__ import annotations

import datetime as dt
import socket
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from quotad import config as cfg
from quotad.app import Daemon
from quotad.clock import SettableClock
from quotad.quota.calendar import day_key
from quotad.quota.model import ContractView, LineRef
from simulators.gateway import Event, Gateway, GatewaySettings, SessionPlan
from simulators.handset import Handset
from simulators.trace import TraceEvent
from simulators.traffic import DEFAULT_FILE, load_models
from simulators.wire import Nas

DAY = 86400.0
SECRET = b"testing123"  # the in-process daemon's only client is the simulated gateway


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


@dataclass(frozen=True, slots=True)
class Action:
    day: float  # days after the scenario's start
    kind: str  # charge | coupon_off | coupon_on | suspend | resume
    units: int = 0
    msisdn: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: float  # epoch seconds
    days: float
    contract_id: str
    plan: str
    contract_start: dt.date
    lines: tuple[LineSpec, ...]
    actions: tuple[Action, ...] = ()
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
    pool: int  # at the day's end (before the next day's maintenance)
    speeds: dict[str, str]


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


def load(path: Path | str) -> Scenario:
    """Parse a scenario file (ScenarioError naming the key when bad)."""
    data = tomllib.loads(Path(path).read_text())
    try:
        contract = data["contract"]
        start = dt.datetime.fromisoformat(str(data["start"]))
        lines = tuple(LineSpec(**line) for line in data["lines"])
        actions = tuple(Action(**a) for a in data.get("actions", []))
    except KeyError as exc:
        raise ScenarioError(f"{exc.args[0]}: missing") from exc
    except TypeError as exc:
        raise ScenarioError(str(exc)) from exc
    if start.tzinfo is None:
        raise ScenarioError("start: needs a UTC offset, e.g. 2026-11-01T00:00:00+09:00")
    traffic = data.get("traffic_file")
    quotad_config = data.get("quotad_config")
    return Scenario(
        name=str(data.get("name", Path(path).stem)), start=start.timestamp(), days=float(data.get("days", 30)),
        contract_id=str(contract["id"]), plan=str(contract["plan"]),
        contract_start=dt.date.fromisoformat(str(contract["start_date"])), lines=lines, actions=actions,
        step_seconds=float(data.get("step_seconds", 300)), interim_interval=int(data.get("interim_interval", 3600)),
        seed=int(data.get("seed", 1)), initial_units=int(contract.get("units", 0)),
        traffic_file=Path(path).parent / traffic if traffic else DEFAULT_FILE,
        quotad_config=Path(path).parent / quotad_config if quotad_config else None,
    )


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_config(redis_url: str, data_dir: str, coa_port: int, base: cfg.Config | None = None) -> cfg.Config:
    """quotad's settings (the shipped defaults unless given) on free loopback ports, one worker,
    the simulated gateway as its only client, quiet logs, the run's own Redis, no RadSec or TLS."""
    base = base or cfg.Config()
    gateway = cfg.ClientSettings(name="quotad-sim", address="127.0.0.1/32", secret=cfg.Secret(SECRET.decode()),
                                 coa_port=coa_port)
    return replace(
        base,
        clients=(gateway,),
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
    with tempfile.TemporaryDirectory(prefix="quotad-sim-") as tmp:
        base = cfg.load(scenario.quotad_config) if scenario.quotad_config else None
        config = daemon_config(redis_url, tmp, coa_port, base)
        # The midnight speed walk runs in virtual time: _run ticks it after each step.
        daemon = Daemon(config, clock=SettableClock(scenario.start), speed_timer_seconds=0)
        await daemon.start()
        try:
            return await _run(scenario, daemon, coa_port, progress, record)
        finally:
            await daemon.stop()


async def _provision(scenario: Scenario, daemon: Daemon) -> None:
    store, now = daemon.store, scenario.start
    assert store is not None
    await store.create_contract(scenario.contract_id, scenario.plan, scenario.contract_start, now)
    for line in scenario.lines:
        await store.add_line(scenario.contract_id, line.msisdn, line.iccid, line.imsi, "nano", False, now)
    if scenario.initial_units:
        await store.charge(scenario.contract_id, scenario.initial_units, "scenario", now)


def _gateway(scenario: Scenario, daemon: Daemon, coa_port: int, clock: SettableClock) -> Gateway:
    settings = GatewaySettings(
        auth_port=daemon.auth_port, acct_port=daemon.acct_port, coa_port=coa_port,
        nas=Nas(secret=SECRET), interim_interval=scenario.interim_interval,
    )
    gateway = Gateway(settings, clock.now)
    models = load_models(scenario.traffic_file)
    for i, line in enumerate(scenario.lines):
        handset = Handset(line.msisdn, line.imsi, f"35349000{i:08d}", rat=line.rat, auth=line.auth)
        hours = line.session_hours
        plan = SessionPlan(None if hours is None else hours * 3600, line.gap_minutes * 60)
        model = line.model or line.rat
        if model not in models:
            raise ScenarioError(f"lines[{i}].model: {model!r} is not in {scenario.traffic_file}")
        gateway.add(handset, models[model], seed=scenario.seed * 1000 + i, plan=plan)
    return gateway


async def _run(
    scenario: Scenario, daemon: Daemon, coa_port: int, progress: Callable[[DayReport], None] | None, record: bool
) -> Report:
    clock = daemon.clock
    assert isinstance(clock, SettableClock) and daemon.store is not None and daemon.sessions is not None
    assert daemon.speed_timer is not None
    await _provision(scenario, daemon)
    gateway = _gateway(scenario, daemon, coa_port, clock)
    gateway.recording = [] if record else None
    await gateway.start()
    report = Report(scenario.name)
    report.initial_pool = (await daemon.store.contract_view(scenario.contract_id, clock.now())).pool
    pending = sorted(scenario.actions, key=lambda a: a.day)
    end = scenario.start + scenario.days * DAY
    day_end = scenario.start + DAY
    mark = _Mark.take(gateway)
    try:
        while clock.now() < end:
            clock.advance(scenario.step_seconds)
            while pending and scenario.start + pending[0].day * DAY <= clock.now():
                await _apply(pending.pop(0), scenario, daemon, gateway)
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
    report.final = await daemon.store.contract_view(scenario.contract_id, clock.now())
    report.coa = dict(gateway.dynauth_counts)
    report.used = {d.handset.msisdn: d.handset.lifetime_octets for d in gateway.devices}
    report.exempt = {d.handset.msisdn: d.handset.lifetime_exempt for d in gateway.devices}
    report.counted = await _counted(scenario, daemon, end)
    return report


async def _counted(scenario: Scenario, daemon: Daemon, end: float) -> dict[str, tuple[int, int]]:
    """What quotad recorded per line over the run's Japan days (R-35 usage, high and low apart)."""
    assert daemon.store is not None
    days = sorted({day_key(t, daemon.config.quota.timezone) for t in _every_day(scenario.start, end)})
    out = {}
    for line in scenario.lines:
        rows = await daemon.store.line_usage(LineRef(scenario.contract_id, line.msisdn), days)
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
    view = await daemon.store.contract_view(scenario.contract_id, now - 1)
    used = {d.handset.msisdn: d.handset.lifetime_octets - mark.octets[d.handset.msisdn] for d in gateway.devices}
    new_events = gateway.events[mark.events:]
    slices = sum(1 for e in new_events if e.kind == "slice")
    jst = dt.timezone(dt.timedelta(hours=9))
    date = dt.datetime.fromtimestamp(now - 1, jst).date().isoformat()
    return DayReport(n, date, used, slices, view.pool, {ln.msisdn: ln.speed for ln in view.lines})


async def _apply(action: Action, scenario: Scenario, daemon: Daemon, gateway: Gateway) -> None:
    store, sessions, now = daemon.store, daemon.sessions, daemon.clock.now()
    assert store is not None and sessions is not None
    refs = [LineRef(scenario.contract_id, ln.msisdn) for ln in scenario.lines]
    targets = [r for r in refs if not action.msisdn or r.msisdn == action.msisdn]
    if action.kind == "charge":
        await store.charge(scenario.contract_id, action.units, "scenario", now)
        event = "charge"
    elif action.kind in ("coupon_on", "coupon_off"):
        for ref in targets:
            await store.set_coupon(ref, action.kind == "coupon_on", now)
        event = "coupon"
    elif action.kind in ("suspend", "resume"):
        for ref in targets:
            await store.set_status(ref, "suspended" if action.kind == "suspend" else "active", now)
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
    }
