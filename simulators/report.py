"""Text reports of the simulators (what a person reads; ``--json`` gives the same as data)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from simulators.replay import ReplayResult
from simulators.scenario import Report

JST = dt.timezone(dt.timedelta(hours=9))
MB = 1_000_000
_NOTABLE = ("reject", "coa", "disconnect", "reauth-failed", "timeout")


def _mb(octets: int) -> str:
    return f"{octets / MB:,.1f} MB"


def print_scenario(report: Report, elapsed: float) -> None:
    """Day by day: usage per line, slices drawn, pool left, speeds; then what happened and the end state."""
    print(f"scenario: {report.scenario} ({len(report.days)} days in {elapsed:.1f} s)")
    for day in report.days:
        used = "  ".join(f"{m[-4:]}:{_mb(u):>10}" for m, u in day.used.items())
        speeds = ",".join(day.speeds.values())
        print(f"{day.date}  used {used}  slices {day.slices:3d}  pool {_mb(day.pool):>10}  speed {speeds}")
    print("events:")
    for e in report.events:
        if e.kind in _NOTABLE or e.kind.startswith("operator") or (e.kind == "stop" and "cause 1 " not in e.detail):
            when = dt.datetime.fromtimestamp(e.at, JST).strftime("%m-%d %H:%M")
            print(f"  {when}  {e.msisdn}  {e.kind:14s} {e.detail}")
    print(f"CoA/Disconnect at the gateway: {report.coa or 'none'}")
    if report.final is not None:
        when = dt.datetime.fromtimestamp(report.final_at, JST).strftime("%Y-%m-%d %H:%M")
        print(f"at the end ({when} Japan time, every session stopped): pool {_mb(report.final.pool)}")
        for ln in report.final.lines:
            used = _mb(report.used.get(ln.msisdn, 0))
            high, low = report.counted.get(ln.msisdn, (0, 0))
            exempt = _mb(report.exempt.get(ln.msisdn, 0))
            print(f"  {ln.msisdn}: moved {used} (quotad counted {_mb(high)} high, {_mb(low)} low; "
                  f"{exempt} zero-rated), holds {_mb(ln.held)}, speed {ln.speed}, overrun {_mb(ln.overrun)}")


def replay_text(result: ReplayResult) -> str:
    """Every event with its due and actual send time, outcome and latency; then the totals."""
    lines = [
        f"{s.sent:9.3f} s (due {s.due:9.3f})  {s.event.session:>12} {s.event.event:8s} {s.outcome:9s} "
        f"{s.latency * 1000:7.1f} ms"
        for s in result.sent
    ]
    lines.append(f"{len(result.sent)} events in {result.wall:.2f} s at speed {result.speed:g}: {result.outcomes()}, "
                 f"latest {result.max_late() * 1000:.1f} ms behind schedule")
    lines += [f"received {kind} for {session or '?'}: {'ACK' if acked else 'NAK 503'}"
              for kind, session, acked in result.dynauth]
    return "\n".join(lines)


def replay_summary(result: ReplayResult) -> dict[str, Any]:
    """The replay's totals as plain data (``--json``)."""
    return {"events": len(result.sent), "outcomes": result.outcomes(), "wall_s": round(result.wall, 3),
            "max_late_s": round(result.max_late(), 4), "speed": result.speed,
            "dynauth": [{"kind": k, "session": s, "ack": a} for k, s, a in result.dynauth]}
