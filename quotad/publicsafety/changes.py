"""Changes to a public-safety contract tree (R-60 … R-65), as pure functions Parent → Parent.

Each function checks its rule and returns the new tree, or raises RuleError; the store writes
the result atomically. `today` is the Japan date of the request (the notice date).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from quotad.publicsafety import rules
from quotad.publicsafety.model import (
    GROUP_PLANS,
    ITEM_MOBILE,
    ITEM_ORG_SHARE,
    ITEMS,
    LINE_KINDS,
    ORG_PLAN,
    SIM_TYPES,
    FeeEvent,
    Group,
    Line,
    LineSpec,
    Pair,
    PairApplication,
    Parent,
    Schedule,
)
from quotad.publicsafety.rules import RuleError

MAX_PACKS = 100_000


def new_parent(contract_id: str, item: str, packs: int, today: dt.date) -> Parent:
    """R-60 / R-63: a parent contract on an item; packs only under org packet share."""
    if item not in ITEMS:
        raise RuleError(f"item must be one of {', '.join(ITEMS)}", "item", "R-63")
    _check_packs(item, packs)
    return Parent(id=contract_id, item=item, started=today, packs=Schedule(((rules.month_of(today), packs),)))


def _check_packs(item: str, packs: int) -> None:
    if item == ITEM_MOBILE and packs != 0:
        raise RuleError("packs are for the org packet share item only (0 here)", "packs", "R-63")
    if item == ITEM_ORG_SHARE and not 1 <= packs <= MAX_PACKS:
        raise RuleError(f"packs must be between 1 and {MAX_PACKS} (1 GB each)", "packs", "R-63")


def _live_parent(parent: Parent, today: dt.date) -> None:
    if parent.ends is not None and parent.ends < today:
        raise RuleError(f"contract {parent.id} ended on {parent.ends}", "contract_id", "R-60", "conflict")


def add_group(parent: Parent, group_id: str, kind: str, plan: str, today: dt.date) -> Parent:
    """R-60: a new line group; its plan is one of 1/3/10/30 GB (org share: the org plan)."""
    _live_parent(parent, today)
    if parent.group(group_id) is not None:
        raise RuleError(f"group {group_id} exists", "id", "R-60", "conflict")
    if kind not in LINE_KINDS:
        raise RuleError(f"kind must be one of {', '.join(LINE_KINDS)}", "kind", "R-61")
    _check_plan(parent, plan)
    group = Group(id=group_id, kind=kind, plans=Schedule(((rules.month_of(today), plan),)), started=today,
                  ends=parent.ends)
    return replace(parent, groups=(*parent.groups, group))


def _check_plan(parent: Parent, plan: str) -> None:
    allowed = GROUP_PLANS if parent.item == ITEM_MOBILE else (ORG_PLAN,)
    if plan not in allowed:
        raise RuleError(f"plan must be one of {', '.join(allowed)} for item {parent.item}", "plan", "R-63")


def _live_group(parent: Parent, group_id: str, today: dt.date) -> Group:
    group = parent.group(group_id)
    if group is None:
        raise RuleError(f"no group {group_id}", "group_id", "R-60", "notfound")
    if group.ends is not None and group.ends < today:
        raise RuleError(f"group {group_id} ended on {group.ends}", "group_id", "R-60", "conflict")
    return group


def add_pair(parent: Parent, app: PairApplication, today: dt.date) -> Parent:
    """R-61: a type D and a type K line applied for together, of the group's kind."""
    _live_parent(parent, today)
    group = _live_group(parent, app.group_id, today)
    rules.check_pair(app, group.kind)
    if parent.pair(app.pair_id) is not None:
        raise RuleError(f"pair {app.pair_id} exists", "id", "R-61", "conflict")
    for prefix, spec in (("d", app.d), ("k", app.k)):
        _check_unused(parent, prefix, spec)
    lines = (_line(app, "D", app.d, today, group.ends), _line(app, "K", app.k, today, group.ends))
    start = rules.month_of(today)
    pair = Pair(id=app.pair_id, group_id=app.group_id, d_msisdn=app.d.msisdn, k_msisdn=app.k.msisdn,
                call_flat=Schedule(((start, app.call_flat),)), disaster=app.disaster)
    return replace(parent, pairs=(*parent.pairs, pair), lines=(*parent.lines, *lines))


def _check_unused(parent: Parent, prefix: str, spec: LineSpec) -> None:
    """Numbers, cards and fixed addresses are the line's own (R-61, R-62)."""
    for attr in ("msisdn", "iccid", "imsi", "ipv4", "ipv6_prefix"):
        value = getattr(spec, attr)
        if attr.startswith("ip"):
            value = rules.check_ipv4(value, f"{prefix}_ipv4") if attr == "ipv4" else rules.check_ipv6_prefix(
                value, f"{prefix}_ipv6_prefix")
        if any(getattr(ln, attr) == value for ln in parent.lines):
            rule = "R-62" if attr.startswith("ip") else "R-61"
            raise RuleError(f"{attr} {value} is already in use", f"{prefix}_{attr}", rule, "conflict")


def _line(app: PairApplication, line_type: str, spec: LineSpec, today: dt.date, ends: dt.date | None) -> Line:
    return Line(msisdn=spec.msisdn, pair_id=app.pair_id, group_id=app.group_id, line_type=line_type,
                sim_type=spec.sim_type, iccid=spec.iccid, imsi=spec.imsi,
                ipv4=rules.check_ipv4(spec.ipv4, "ipv4"), ipv6_prefix=rules.check_ipv6_prefix(spec.ipv6_prefix,
                                                                                             "ipv6_prefix"),
                started=today, ends=ends)


def change_plan(parent: Parent, group_id: str, plan: str, today: dt.date) -> tuple[Parent, str]:
    """R-64: a group's plan changes from the next month; refused on a month's last day.
    Returns the new tree and the month the plan takes effect."""
    _live_parent(parent, today)
    group = _live_group(parent, group_id, today)
    _check_plan(parent, plan)
    month = rules.change_month(today, "plan")
    changed = replace(group, plans=group.plans.changed(month, plan))
    return replace(parent, groups=tuple(changed if g.id == group_id else g for g in parent.groups)), month


def change_packs(parent: Parent, packs: int, today: dt.date) -> tuple[Parent, str]:
    """R-64: the pack count changes from the next month; refused on a month's last day."""
    _live_parent(parent, today)
    if parent.item != ITEM_ORG_SHARE:
        raise RuleError("packs are for the org packet share item only", "packs", "R-63")
    _check_packs(parent.item, packs)
    month = rules.change_month(today, "packs")
    return replace(parent, packs=parent.packs.changed(month, packs)), month


def terminate_parent(parent: Parent, today: dt.date, requested: dt.date) -> Parent:
    """R-60: the parent ends on its termination date, and its groups and lines the same day."""
    _live_parent(parent, today)
    end = rules.termination_date(today, requested)
    groups = tuple(replace(g, ends=rules.earlier(g.ends, end)) for g in parent.groups)
    lines = tuple(replace(ln, ends=rules.earlier(ln.ends, end)) for ln in parent.lines)
    return replace(parent, ends=rules.earlier(parent.ends, end), groups=groups, lines=lines)


def terminate_group(parent: Parent, group_id: str, today: dt.date, requested: dt.date) -> Parent:
    """R-60: a group ends on its termination date, and its lines the same day."""
    _live_parent(parent, today)
    _live_group(parent, group_id, today)
    end = rules.termination_date(today, requested)
    groups = tuple(replace(g, ends=rules.earlier(g.ends, end)) if g.id == group_id else g for g in parent.groups)
    lines = tuple(replace(ln, ends=rules.earlier(ln.ends, end)) if ln.group_id == group_id else ln
                  for ln in parent.lines)
    return replace(parent, groups=groups, lines=lines)


def terminate_line(parent: Parent, msisdn: str, today: dt.date, requested: dt.date) -> Parent:
    """R-61: the line ends on its termination date; its partner at the end of that month; R-60:
    a group whose lines have all ended ends at the end of that month."""
    _live_parent(parent, today)
    line = _live_line(parent, msisdn, today)
    end = rules.termination_date(today, requested)
    pair = parent.pair(line.pair_id)
    assert pair is not None
    partner = pair.k_msisdn if line.line_type == "D" else pair.d_msisdn
    ends = {msisdn: end, partner: rules.partner_end(end)}
    lines = tuple(replace(ln, ends=rules.earlier(ln.ends, ends[ln.msisdn])) if ln.msisdn in ends else ln
                  for ln in parent.lines)
    return _close_groups(replace(parent, lines=lines))


def _live_line(parent: Parent, msisdn: str, today: dt.date) -> Line:
    line = parent.line(msisdn)
    if line is None:
        raise RuleError(f"no line {msisdn}", "msisdn", "R-61", "notfound")
    if line.ends is not None and line.ends < today:
        raise RuleError(f"line {msisdn} ended on {line.ends}", "msisdn", "R-61", "conflict")
    return line


def _close_groups(parent: Parent) -> Parent:
    """R-60: each group all of whose lines have an end date ends at the end of the last one's month."""
    groups = []
    for group in parent.groups:
        lines = parent.group_lines(group.id)
        if lines and all(ln.ends is not None for ln in lines):
            last = max(ln.ends for ln in lines if ln.ends is not None)
            group = replace(group, ends=rules.earlier(group.ends, rules.group_end(last)))
        groups.append(group)
    return replace(parent, groups=tuple(groups))


def change_card(parent: Parent, msisdn: str, iccid: str, imsi: str, sim_type: str, kind: str,
                today: dt.date) -> Parent:
    """R-65: a SIM type change (kind "sim_change", to the other SIM type) or a card reissue
    (kind "reissue", multi-FF SIM cards only, seed 002 art. 11): a new card on the same line, and
    its one-time fee."""
    _live_parent(parent, today)
    line = _live_line(parent, msisdn, today)
    if sim_type not in SIM_TYPES:
        raise RuleError(f"sim_type must be one of {', '.join(SIM_TYPES)}", "sim_type", "R-61")
    if kind == "sim_change" and sim_type == line.sim_type:
        raise RuleError(f"the line's SIM type is already {sim_type}", "sim_type", "R-65")
    if kind == "reissue" and (line.sim_type != "multi_ff" or sim_type != "multi_ff"):
        raise RuleError("a card reissue is for multi-FF SIM cards only", "sim_type", "R-65")
    for attr, value in (("iccid", iccid), ("imsi", imsi)):
        if any(getattr(ln, attr) == value for ln in parent.lines):
            raise RuleError(f"the new card needs a new {attr}: {value} is in use", attr, "R-65", "conflict")
    new = replace(line, iccid=iccid, imsi=imsi, sim_type=sim_type)
    lines = tuple(new if ln.msisdn == msisdn else ln for ln in parent.lines)
    return replace(parent, lines=lines, events=(*parent.events, FeeEvent(today, kind, msisdn)))


def set_call_flat(parent: Parent, pair_id: str, on: bool, today: dt.date) -> tuple[Parent, str]:
    """R-65: the call flat-rate option is set on both lines of a pair at once (voice only).
    Starting: from the 1st of next month; stopping: after the month in which notice + 30 days
    falls (seed 002 art. 13). Returns the tree and the first month of the new state."""
    _live_parent(parent, today)
    pair = _live_pair(parent, pair_id, today)
    group = parent.group(pair.group_id)
    assert group is not None
    if on and group.kind != "voice":
        raise RuleError("the call flat-rate option is for voice lines only", "call_flat", "R-65")
    month = rules.call_flat_start(today) if on else rules.next_month(rules.call_flat_last_month(today))
    changed = replace(pair, call_flat=pair.call_flat.changed(month, on))
    return replace(parent, pairs=tuple(changed if p.id == pair_id else p for p in parent.pairs)), month


def set_disaster(parent: Parent, pair_id: str, which: str, today: dt.date) -> Parent:
    """R-65: disaster-priority calling on one line of the pair at most ("none", "D" or "K")."""
    _live_parent(parent, today)
    pair = _live_pair(parent, pair_id, today)
    group = parent.group(pair.group_id)
    assert group is not None
    if which not in ("none", "D", "K"):
        raise RuleError("disaster_priority must be none, D or K (one line of the pair at most)",
                        "disaster_priority", "R-65")
    if which != "none" and group.kind != "voice":
        raise RuleError("disaster-priority calling is for voice lines only", "disaster_priority", "R-65")
    changed = replace(pair, disaster=which)
    return replace(parent, pairs=tuple(changed if p.id == pair_id else p for p in parent.pairs))


def _live_pair(parent: Parent, pair_id: str, today: dt.date) -> Pair:
    pair = parent.pair(pair_id)
    if pair is None:
        raise RuleError(f"no pair {pair_id}", "pair_id", "R-61", "notfound")
    for msisdn in (pair.d_msisdn, pair.k_msisdn):
        _live_line(parent, msisdn, today)
    return pair
