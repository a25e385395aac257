"""Plain dataclasses of the public-safety service (SPEC §6): parent contract → groups → lines.

The tree is immutable: every change (quotad.publicsafety.changes) returns a new Parent. Values
that change only from a later month (group plan, pack count, call flat-rate option; R-64) are
kept as a Schedule: (first month "YYYY-MM", value) steps, oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

ITEM_MOBILE = "mobile"  # 公共安全モバイル: each group has a plan of 1/3/10/30 GB
ITEM_ORG_SHARE = "org_share"  # 公共安全モバイル(組織パケットシェア): packs of 1 GB on the parent
ITEMS = (ITEM_MOBILE, ITEM_ORG_SHARE)

ORG_PLAN = "org_share"  # the one plan of a group under an org-share parent
GROUP_PLANS = ("1GB", "3GB", "10GB", "30GB")
PLAN_BYTES = {"1GB": 1_000_000_000, "3GB": 3_000_000_000, "10GB": 10_000_000_000, "30GB": 30_000_000_000}
GB = 1_000_000_000

LINE_KINDS = ("data", "voice")
LINE_TYPES = ("D", "K")  # type D: docomo network, type K: KDDI network
SIM_TYPES = ("multi_ff", "esim")  # multi-FF SIM card, eSIM profile
DISASTER_CHOICES = ("none", "D", "K")  # disaster-priority calling: on one line of a pair at most


@dataclass(slots=True, frozen=True)
class Schedule(Generic[T]):
    """A value that changes from the start of given months; steps are (month "YYYY-MM", value)."""

    steps: tuple[tuple[str, T], ...]

    def at(self, month: str) -> T | None:
        """The value in effect in month, None before the first step."""
        found: T | None = None
        for first, value in self.steps:
            if first <= month:
                found = value
        return found

    def changed(self, month: str, value: T) -> Schedule[T]:
        """The schedule with value from month on (later steps replaced)."""
        kept = tuple(s for s in self.steps if s[0] < month)
        return Schedule((*kept, (month, value)))


@dataclass(slots=True, frozen=True)
class Line:
    """One line (回線契約) of a pair: its network type, SIM, card and fixed addresses (R-61, R-62)."""

    msisdn: str
    pair_id: str
    group_id: str
    line_type: str  # "D" | "K"
    sim_type: str  # "multi_ff" | "esim"
    iccid: str
    imsi: str
    ipv4: str
    ipv6_prefix: str
    started: dt.date
    ends: dt.date | None = None  # last day of service (inclusive), once a termination is set


@dataclass(slots=True, frozen=True)
class Pair:
    """A type D line and a type K line applied for together (R-61) and their pair options."""

    id: str
    group_id: str
    d_msisdn: str
    k_msisdn: str
    call_flat: Schedule[bool]  # call flat-rate option, on both lines or neither
    disaster: str = "none"  # which line has disaster-priority calling: "none", "D" or "K"


@dataclass(slots=True, frozen=True)
class Group:
    """A line group (回線グループ): its line kind and plan (R-60, R-63)."""

    id: str
    kind: str  # "data" | "voice": every line of the group (R-61: a pair shares its kind)
    plans: Schedule[str]
    started: dt.date
    ends: dt.date | None = None


@dataclass(slots=True, frozen=True)
class FeeEvent:
    """A one-time fee's cause: a SIM type change or a card reissue (R-65)."""

    day: dt.date
    kind: str  # "sim_change" | "reissue"
    msisdn: str


@dataclass(slots=True, frozen=True)
class Parent:
    """The parent contract (親たる契約): item, packs, and everything under it (R-60)."""

    id: str
    item: str
    started: dt.date
    packs: Schedule[int]  # org packet share: 1 GB packs shared by every line
    groups: tuple[Group, ...] = ()
    pairs: tuple[Pair, ...] = ()
    lines: tuple[Line, ...] = ()
    events: tuple[FeeEvent, ...] = ()
    ends: dt.date | None = None

    def group(self, group_id: str) -> Group | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def line(self, msisdn: str) -> Line | None:
        return next((ln for ln in self.lines if ln.msisdn == msisdn), None)

    def pair(self, pair_id: str) -> Pair | None:
        return next((p for p in self.pairs if p.id == pair_id), None)

    def group_lines(self, group_id: str) -> tuple[Line, ...]:
        return tuple(ln for ln in self.lines if ln.group_id == group_id)


@dataclass(slots=True, frozen=True)
class LineSpec:
    """One side of a pair application."""

    msisdn: str
    iccid: str
    imsi: str
    sim_type: str
    ipv4: str
    ipv6_prefix: str


@dataclass(slots=True, frozen=True)
class PairApplication:
    """R-61: a type D line and a type K line applied for together, with their options."""

    pair_id: str
    group_id: str
    d: LineSpec
    k: LineSpec
    call_flat: bool = False
    disaster: str = "none"


@dataclass(slots=True, frozen=True)
class StatementItem:
    """One line of a monthly statement."""

    code: str  # one_off, plan, packs, call_flat, disaster_priority, overage, sim_change, reissue
    description: str
    quantity: int
    unit_yen: int
    amount_yen: int


@dataclass(slots=True, frozen=True)
class Statement:
    """A parent contract's statement for one calendar month (R-65)."""

    contract_id: str
    month: str
    items: tuple[StatementItem, ...]
    excess_bytes: int
    overage_gb: int

    @property
    def total_yen(self) -> int:
        return sum(i.amount_yen for i in self.items)
