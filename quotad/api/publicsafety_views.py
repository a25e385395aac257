"""JSON views of the public-safety service (R-60 … R-65) and their OpenAPI schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from quotad.publicsafety import rules
from quotad.publicsafety.model import Parent, Schedule, Statement

PARAMS = {
    "group_id": "Line group id (R-60).",
    "pair_id": "Line pair id (R-61).",
    "month": "Calendar month, YYYY-MM (Japan time).",
}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _steps(schedule: Schedule[Any]) -> list[dict[str, Any]]:
    return [{"from": month, "value": value} for month, value in schedule.steps]


def contract(parent: Parent, today: dt.date) -> dict[str, Any]:
    """The tree as of today: values in effect this month, and their schedules (R-64)."""
    month = rules.month_of(today)
    return {
        "id": parent.id, "item": parent.item, "started": _iso(parent.started), "ends": _iso(parent.ends),
        "packs": parent.packs.at(month) or 0, "packs_schedule": _steps(parent.packs),
        "groups": [{"id": g.id, "kind": g.kind, "plan": g.plans.at(month), "plan_schedule": _steps(g.plans),
                    "started": _iso(g.started), "ends": _iso(g.ends),
                    "in_service": rules.in_service(g.started, g.ends, today)} for g in parent.groups],
        "pairs": [{"id": p.id, "group_id": p.group_id, "d_msisdn": p.d_msisdn, "k_msisdn": p.k_msisdn,
                   "call_flat": bool(p.call_flat.at(month)), "call_flat_schedule": _steps(p.call_flat),
                   "disaster_priority": p.disaster} for p in parent.pairs],
        "lines": [{"msisdn": ln.msisdn, "pair_id": ln.pair_id, "group_id": ln.group_id, "type": ln.line_type,
                   "sim_type": ln.sim_type, "iccid": ln.iccid, "imsi": ln.imsi, "ipv4": ln.ipv4,
                   "ipv6_prefix": ln.ipv6_prefix, "started": _iso(ln.started), "ends": _iso(ln.ends),
                   "in_service": rules.in_service(ln.started, ln.ends, today)} for ln in parent.lines],
    }


def statement(st: Statement) -> dict[str, Any]:
    """R-65: the statement with its items and total, in yen."""
    return {
        "contract_id": st.contract_id, "month": st.month, "currency": "JPY",
        "items": [{"code": i.code, "description": i.description, "quantity": i.quantity, "unit_yen": i.unit_yen,
                   "amount_yen": i.amount_yen} for i in st.items],
        "excess_bytes": st.excess_bytes, "overage_gb": st.overage_gb, "total_yen": st.total_yen,
    }


_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_DATE = {"type": "string", "format": "date"}
_NDATE = {"type": ["string", "null"], "format": "date"}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


def _schedule(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": _obj({"from": _STR, "value": value})}


COMPONENTS: dict[str, Any] = {
    "PsContract": _obj({
        "id": _STR, "item": {"type": "string", "enum": ["mobile", "org_share"]}, "started": _DATE, "ends": _NDATE,
        "packs": _INT, "packs_schedule": _schedule(_INT),
        "groups": {"type": "array", "items": _obj({
            "id": _STR, "kind": _STR, "plan": {"type": ["string", "null"]}, "plan_schedule": _schedule(_STR),
            "started": _DATE, "ends": _NDATE, "in_service": _BOOL})},
        "pairs": {"type": "array", "items": _obj({
            "id": _STR, "group_id": _STR, "d_msisdn": _STR, "k_msisdn": _STR, "call_flat": _BOOL,
            "call_flat_schedule": _schedule(_BOOL), "disaster_priority": _STR})},
        "lines": {"type": "array", "items": _obj({
            "msisdn": _STR, "pair_id": _STR, "group_id": _STR, "type": _STR, "sim_type": _STR, "iccid": _STR,
            "imsi": _STR, "ipv4": _STR, "ipv6_prefix": _STR, "started": _DATE, "ends": _NDATE,
            "in_service": _BOOL})},
    }),
    "PsScheduledChange": _obj({"effective_month": _STR, "contract": {"$ref": "#/components/schemas/PsContract"}}),
    "PsUsage": _obj({"contract_id": _STR, "month": _STR, "excess_bytes": _INT, "groups": {
        "type": "array",
        "items": _obj({"group_id": _STR, "used_bytes": _INT, "capacity_bytes": _INT, "excess_bytes": _INT})}}),
    "Statement": _obj({
        "contract_id": _STR, "month": _STR, "currency": _STR,
        "items": {"type": "array", "items": _obj({"code": _STR, "description": _STR, "quantity": _INT,
                                                   "unit_yen": _INT, "amount_yen": _INT})},
        "excess_bytes": _INT, "overage_gb": _INT, "total_yen": _INT}),
}
