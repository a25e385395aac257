"""R-65: a parent contract's monthly statement, as one pure function.

Monthly fees are charged in full for any month the thing is in service on at least one day
(never pro-rated). Overage: the excess over capacity of each group (item "public-safety
mobile"), or of the whole contract over its packs (item "org packet share"), added up over the
contract and rounded up to whole GB.
"""

from __future__ import annotations

from collections.abc import Mapping

from quotad.publicsafety import rules
from quotad.publicsafety.model import (
    GB,
    ITEM_ORG_SHARE,
    PLAN_BYTES,
    Parent,
    Statement,
    StatementItem,
)
from quotad.publicsafety.settings import PublicSafetySettings


def capacity_bytes(parent: Parent, group_id: str, month: str) -> int:
    """R-63: a group's capacity in month under item "public-safety mobile" (0 under org share)."""
    group = parent.group(group_id)
    plan = group.plans.at(month) if group else None
    return PLAN_BYTES.get(plan or "", 0)


def excess_bytes(parent: Parent, month: str, usage: Mapping[str, int]) -> int:
    """R-63 / R-65: the contract's excess in month; usage is bytes used per group id."""
    if parent.item == ITEM_ORG_SHARE:
        packs = parent.packs.at(month) or 0
        return max(0, sum(usage.values()) - packs * GB)
    return sum(max(0, used - capacity_bytes(parent, gid, month)) for gid, used in usage.items())


def overage_gb(excess: int) -> int:
    """R-65: the excess rounded up to whole GB."""
    return -(-excess // GB)


def statement(parent: Parent, month: str, usage: Mapping[str, int], fees: PublicSafetySettings) -> Statement:
    """The statement of month "YYYY-MM" (R-65); usage is bytes used in that month per group id."""
    items = [*_one_off(parent, month, fees), *_plans(parent, month, fees), *_packs(parent, month, fees),
             *_options(parent, month, fees)]
    excess = excess_bytes(parent, month, usage)
    gb = overage_gb(excess)
    if gb:
        items.append(_item("overage", f"data over capacity, {excess} bytes rounded up", gb,
                           fees.overage_yen_per_gb))
    items += _events(parent, month, fees)
    return Statement(contract_id=parent.id, month=month, items=tuple(items), excess_bytes=excess, overage_gb=gb)


def _item(code: str, description: str, quantity: int, unit: int) -> StatementItem:
    return StatementItem(code=code, description=description, quantity=quantity, unit_yen=unit,
                         amount_yen=quantity * unit)


def _one_off(parent: Parent, month: str, fees: PublicSafetySettings) -> list[StatementItem]:
    added = [ln for ln in parent.lines if rules.month_of(ln.started) == month]
    return [_item("one_off", "line setup", len(added), fees.one_off_yen)] if added else []


def _plans(parent: Parent, month: str, fees: PublicSafetySettings) -> list[StatementItem]:
    out = []
    for group in parent.groups:
        plan = group.plans.at(month)
        if plan is None or not rules.in_month(group.started, group.ends, month):
            continue
        table = fees.plan_yen_voice if group.kind == "voice" else fees.plan_yen_data
        out.append(_item("plan", f"group {group.id}: {group.kind} plan {plan}", 1, table[plan]))
    return out


def _packs(parent: Parent, month: str, fees: PublicSafetySettings) -> list[StatementItem]:
    packs = parent.packs.at(month) or 0
    if parent.item != ITEM_ORG_SHARE or not packs or not rules.in_month(parent.started, parent.ends, month):
        return []
    return [_item("packs", "org packet share, 1 GB packs", packs, fees.pack_yen_per_gb)]


def _options(parent: Parent, month: str, fees: PublicSafetySettings) -> list[StatementItem]:
    flat = disaster = 0
    for pair in parent.pairs:
        lines = [ln for ln in parent.lines if ln.pair_id == pair.id and rules.in_month(ln.started, ln.ends, month)]
        if pair.call_flat.at(month):
            flat += len(lines)
        if pair.disaster != "none":
            disaster += sum(1 for ln in lines if ln.line_type == pair.disaster)
    out = []
    if flat:
        out.append(_item("call_flat", "call flat-rate option, per voice line", flat, fees.call_flat_yen))
    if disaster:
        out.append(_item("disaster_priority", "disaster-priority calling, per line", disaster,
                         fees.disaster_priority_yen))
    return out


def _events(parent: Parent, month: str, fees: PublicSafetySettings) -> list[StatementItem]:
    out = []
    for kind, text, unit in (("sim_change", "SIM type change", fees.sim_change_yen),
                             ("reissue", "card reissue", fees.reissue_yen)):
        count = sum(1 for e in parent.events if e.kind == kind and rules.month_of(e.day) == month)
        if count:
            out.append(_item(kind, text, count, unit))
    return out
