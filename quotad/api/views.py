"""Rendering of the quota domain as API JSON: bytes as integers, instants as ISO 8601 in the zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from quotad.quota import calendar as cal
from quotad.quota.model import Bucket, Card, Charge, ContractView, DayUsage, LineView


def iso(instant: float, tz: str) -> str:
    """An instant as ISO 8601 with the zone's offset, e.g. 2024-07-01T00:00:00+09:00."""
    return cal.local(instant, tz).isoformat(timespec="seconds")


def day(key: str) -> str:
    """A day key "YYYYMMDD" as "YYYY-MM-DD"."""
    return dt.datetime.strptime(key, "%Y%m%d").date().isoformat() if key else ""


def bucket(b: Bucket, tz: str) -> dict[str, Any]:
    """One bucket of the pool (R-35)."""
    return {"id": b.id, "kind": b.kind, "size": b.size, "left": b.left, "expires_at": iso(b.expires_at, tz)}


def line(contract_id: str, v: LineView) -> dict[str, Any]:
    """One line: its card, status, switch, held slice (R-13) and live session count."""
    return {
        "contract_id": contract_id, "msisdn": v.msisdn, "iccid": v.iccid, "imsi": v.imsi,
        "card_type": v.card_type, "voice": v.voice, "status": v.status, "coupon_on": v.coupon_on,
        "held": v.held, "speed": v.speed or None, "overrun": v.overrun, "sessions": v.sessions,
    }


def card(
    contract_id: str, c: Card, reason: str | None, state: str, replaced: Card | None, v: LineView
) -> dict[str, Any]:
    """A line's new card (R-32, R-33): pending or active, the card it replaced, and the line after."""
    return {
        "contract_id": contract_id, "msisdn": v.msisdn, "iccid": c.iccid, "imsi": c.imsi,
        "card_type": c.card_type, "reason": reason, "state": state,
        "replaced": None if replaced is None else {
            "iccid": replaced.iccid, "imsi": replaced.imsi, "card_type": replaced.card_type},
        "line": line(contract_id, v),
    }


def contract(v: ContractView, tz: str) -> dict[str, Any]:
    """A contract: plan, start date, pool total and buckets, lines (R-35)."""
    return {
        "id": v.contract_id, "plan": v.plan, "start_date": day(v.start_date), "pool": v.pool,
        "buckets": [bucket(b, tz) for b in v.buckets],
        "lines": [line(v.contract_id, x) for x in v.lines],
    }


def charge(c: Charge, unit_bytes: int, tz: str) -> dict[str, Any]:
    """One purchase of the charge history (R-11, R-35)."""
    return {"at": iso(c.at, tz), "units": c.units, "bytes": c.units * unit_bytes, "who": c.who,
            "bucket_id": c.bucket_id}


def usage(u: DayUsage) -> dict[str, Any]:
    """One Japan day's usage, high and low speed apart (R-35)."""
    return {"date": day(u.day), "high": u.high, "low": u.low}


def today_usage(u: DayUsage, now: float, tz: str) -> dict[str, Any]:
    """Today's usage so far (the current Japan day), high and low speed apart, and when it was read:
    running figures, not one of the R-35 days."""
    return {"date": day(u.day), "high": u.high, "low": u.low, "as_of": iso(now, tz)}
