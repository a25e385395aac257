"""The contract tree as JSON (how the store keeps it) and back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from quotad.publicsafety.model import FeeEvent, Group, Line, Pair, Parent, Schedule


def _day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def dumps(parent: Parent) -> str:
    """The tree as compact JSON."""
    doc = {
        "id": parent.id, "item": parent.item, "started": _iso(parent.started), "ends": _iso(parent.ends),
        "packs": [list(s) for s in parent.packs.steps],
        "groups": [{"id": g.id, "kind": g.kind, "plans": [list(s) for s in g.plans.steps],
                    "started": _iso(g.started), "ends": _iso(g.ends)} for g in parent.groups],
        "pairs": [{"id": p.id, "group_id": p.group_id, "d": p.d_msisdn, "k": p.k_msisdn,
                   "call_flat": [list(s) for s in p.call_flat.steps], "disaster": p.disaster} for p in parent.pairs],
        "lines": [{"msisdn": ln.msisdn, "pair_id": ln.pair_id, "group_id": ln.group_id, "type": ln.line_type,
                   "sim_type": ln.sim_type, "iccid": ln.iccid, "imsi": ln.imsi, "ipv4": ln.ipv4,
                   "ipv6_prefix": ln.ipv6_prefix, "started": _iso(ln.started), "ends": _iso(ln.ends)}
                  for ln in parent.lines],
        "events": [{"day": _iso(e.day), "kind": e.kind, "msisdn": e.msisdn} for e in parent.events],
    }
    return json.dumps(doc, separators=(",", ":"))


def loads(raw: str | bytes) -> Parent:
    """The tree from its JSON."""
    doc: dict[str, Any] = json.loads(raw)
    started = _day(doc["started"])
    assert started is not None
    return Parent(
        id=doc["id"], item=doc["item"], started=started, ends=_day(doc["ends"]),
        packs=Schedule(tuple((m, int(v)) for m, v in doc["packs"])),
        groups=tuple(Group(id=g["id"], kind=g["kind"], plans=Schedule(tuple((m, str(v)) for m, v in g["plans"])),
                           started=_day(g["started"]) or started, ends=_day(g["ends"])) for g in doc["groups"]),
        pairs=tuple(Pair(id=p["id"], group_id=p["group_id"], d_msisdn=p["d"], k_msisdn=p["k"],
                         call_flat=Schedule(tuple((m, bool(v)) for m, v in p["call_flat"])), disaster=p["disaster"])
                    for p in doc["pairs"]),
        lines=tuple(Line(msisdn=ln["msisdn"], pair_id=ln["pair_id"], group_id=ln["group_id"], line_type=ln["type"],
                         sim_type=ln["sim_type"], iccid=ln["iccid"], imsi=ln["imsi"], ipv4=ln["ipv4"],
                         ipv6_prefix=ln["ipv6_prefix"], started=_day(ln["started"]) or started,
                         ends=_day(ln["ends"])) for ln in doc["lines"]),
        events=tuple(FeeEvent(day=_day(e["day"]) or started, kind=e["kind"], msisdn=e["msisdn"])
                     for e in doc["events"]),
    )
