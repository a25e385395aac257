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


def _when(at: float, fmt: str = "%m-%d %H:%M") -> str:
    return dt.datetime.fromtimestamp(at, JST).strftime(fmt)


def _notable(report: Report) -> list[str]:
    """The events worth reading; a run of the same reject of a SIM with no accept between (a
    handset retrying a line that has ended, say) is one line with its count."""
    out: list[str] = []
    runs: dict[str, tuple[int, str, int]] = {}  # msisdn → (its line in out, that line, rejects)
    for e in report.events:
        if e.kind in ("accept", "slice"):
            runs.pop(e.msisdn, None)
        if not (e.kind in _NOTABLE or e.kind.startswith("operator")
                or (e.kind == "stop" and "cause 1 " not in e.detail)):
            continue
        text = f"  {_when(e.at)}  {e.msisdn}  {e.kind:14s} {e.detail}"
        run = runs.get(e.msisdn)
        if e.kind == "reject" and run is not None and run[1].endswith(f" {e.detail}"):
            line, first, count = run
            runs[e.msisdn] = (line, first, count + 1)
            out[line] = f"{first}  ({count + 1} times, the last at {_when(e.at)})"
            continue
        out.append(text)
        if e.kind == "reject":
            runs[e.msisdn] = (len(out) - 1, text, 1)
    return out


def print_scenario(report: Report, elapsed: float) -> None:
    """Day by day: usage per line, slices drawn, pool left, speeds; then what happened, the requests
    and checks, and the end state."""
    print(f"scenario: {report.scenario} ({len(report.days)} days in {elapsed:.1f} s)")
    for day in report.days:
        used = "  ".join(f"{m[-4:]}:{_mb(u):>10}" for m, u in day.used.items())
        speeds = ",".join(day.speeds.values())
        pool = "" if day.pool is None else f"  pool {_mb(day.pool):>10}"
        print(f"{day.date}  used {used}  slices {day.slices:3d}{pool}  speed {speeds}")
    print("events:")
    for line in _notable(report):
        print(line)
    print(f"CoA/Disconnect at the gateway: {report.coa or 'none'}")
    if report.checks:
        print(f"requests and checks: {len(report.checks) - len(report.failed)} passed, {len(report.failed)} failed")
        for c in report.checks:
            note = f"  — {c.note}" if c.note else ""
            print(f"  {'ok  ' if c.ok else 'FAIL'} {_when(c.at)}  {c.what}  → {c.detail}{note}")
    when = _when(report.final_at, "%Y-%m-%d %H:%M")
    pool = f": pool {_mb(report.final.pool)}" if report.final is not None else ""
    print(f"at the end ({when} Japan time, every session stopped){pool}")
    held = {ln.msisdn: ln for ln in report.final.lines} if report.final is not None else {}
    for msisdn, moved in report.used.items():
        high, low = report.counted.get(msisdn, (0, 0))
        exempt = _mb(report.exempt.get(msisdn, 0))
        text = f"  {msisdn}: moved {_mb(moved)} (quotad counted {_mb(high)} high, {_mb(low)} low; {exempt} zero-rated)"
        ln = held.get(msisdn)
        if ln is not None:
            text += f", holds {_mb(ln.held)}, speed {ln.speed}, overrun {_mb(ln.overrun)}"
        print(text)


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
