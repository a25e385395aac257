"""The trace format of ``quotad-sim replay``: JSON Lines of session events (docs/simulators.md).

One JSON object per line, in any order (they are sorted by ``t``); blank lines and lines
starting with ``#`` are ignored::

    {"t": 0.0, "event": "attach", "session": "s1", "msisdn": "819000000001",
     "imsi": "440100000000001", "imeisv": "3534900000000001", "rat": "lte", "auth": "pap"}
    {"t": 600.0, "event": "interim", "session": "s1", "input_octets": 120000, "output_octets": 3400000}
    {"t": 900.0, "event": "stop", "session": "s1", "input_octets": 150000, "output_octets": 5100000,
     "cause": 1}

``t`` is seconds from the start of the trace. ``attach`` sends an Access-Request and, once
accepted, the Accounting-Start; ``interim`` and ``stop`` carry the session's cumulative counters
(any size: Gigawords are split off); ``reauth`` sends an Authorize-Only Access-Request.
``quotad-sim gateway --record FILE`` writes what its handsets sent in this format. Pure: parsing,
validation and writing only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

EVENTS = ("attach", "interim", "reauth", "stop")


class TraceError(ValueError):
    """A bad trace line; the message names the line number and the field."""


@dataclass(frozen=True, slots=True)
class TraceEvent:
    t: float
    event: str
    session: str
    msisdn: str = ""
    imsi: str = ""
    imeisv: str = ""
    rat: str = "lte"
    auth: str = "pap"
    input_octets: int = 0
    output_octets: int = 0
    cause: int = 1
    line: int = 0  # where it came from, for reports


def parse(text: str) -> list[TraceEvent]:
    """Every event of a trace, sorted by time (stable for equal times)."""
    events = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        events.append(_event(number, stripped))
    _check_sessions(events)
    return sorted(events, key=lambda e: e.t)


def load(path: Path | str) -> list[TraceEvent]:
    return parse(Path(path).read_text())


def _event(number: int, text: str) -> TraceEvent:
    where = f"line {number}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise TraceError(f"{where}: must be a JSON object")
    unknown = set(data) - set(TraceEvent.__dataclass_fields__) - {"comment"}
    if unknown:
        raise TraceError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    data.pop("comment", None)
    for key in ("t", "event", "session"):
        if key not in data:
            raise TraceError(f"{where}: {key}: missing")
    if data["event"] not in EVENTS:
        raise TraceError(f"{where}: event: must be one of {', '.join(EVENTS)}, got {data['event']!r}")
    if not isinstance(data["t"], int | float) or data["t"] < 0:
        raise TraceError(f"{where}: t: must be a number of seconds ≥ 0")
    for key in ("input_octets", "output_octets"):
        if not isinstance(data.get(key, 0), int) or data.get(key, 0) < 0:
            raise TraceError(f"{where}: {key}: must be a whole number ≥ 0")
    if data.get("rat", "lte") not in ("lte", "3g") or data.get("auth", "pap") not in ("pap", "chap"):
        raise TraceError(f"{where}: rat must be lte or 3g, auth pap or chap")
    return TraceEvent(**{**data, "t": float(data["t"]), "line": number})


def _check_sessions(events: list[TraceEvent]) -> None:
    attached = {e.session: e for e in events if e.event == "attach"}
    for e in events:
        if e.event == "attach" and not e.msisdn:
            raise TraceError(f"line {e.line}: msisdn: missing on attach")
        if e.session not in attached:
            raise TraceError(f"line {e.line}: session {e.session!r} has no attach")
        if e.t < attached[e.session].t:
            raise TraceError(f"line {e.line}: session {e.session!r} event before its attach")


_ATTACH_ONLY = ("msisdn", "imsi", "imeisv", "rat", "auth")
_COUNTERS = ("input_octets", "output_octets")


def dumps(events: Iterable[TraceEvent]) -> str:
    """Events as JSON Lines, each with only the fields its kind uses."""
    out = []
    for e in events:
        data = asdict(e)
        data.pop("line")
        for key in _ATTACH_ONLY if e.event != "attach" else ():
            data.pop(key)
        for key in _COUNTERS if e.event not in ("interim", "stop") else ():
            data.pop(key)
        if e.event != "stop":
            data.pop("cause")
        out.append(json.dumps(data) + "\n")
    return "".join(out)
