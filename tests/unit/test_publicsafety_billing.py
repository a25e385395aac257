"""R-65: the monthly statement of a public-safety parent contract, in exact yen."""

from __future__ import annotations

import datetime as dt

from quotad.publicsafety import billing, changes
from quotad.publicsafety.model import LineSpec, PairApplication, Parent
from quotad.publicsafety.settings import PublicSafetySettings

D = dt.date
FEES = PublicSafetySettings()
GB = 1_000_000_000


def spec(n: int, sim: str = "multi_ff") -> LineSpec:
    return LineSpec(f"8170000000{n:02d}", f"898100{n:02d}", f"440100{n:02d}", sim, f"203.0.113.{n}",
                    f"2001:db8:0:{n:x}::/64")


def pair(parent: Parent, pid: str, group: str, n: int, day: D, **kw: object) -> Parent:
    return changes.add_pair(parent, PairApplication(pid, group, spec(n), spec(n + 1), **kw), day)  # type: ignore[arg-type]


def two_groups() -> Parent:
    """g1: data 3 GB with one pair; g2: voice 10 GB with one pair and call flat-rate; from 2 April 2026."""
    day = D(2026, 4, 2)
    parent = changes.new_parent("P1", "mobile", 0, day)
    parent = changes.add_group(parent, "g1", "data", "3GB", day)
    parent = changes.add_group(parent, "g2", "voice", "10GB", day)
    parent = pair(parent, "p1", "g1", 1, day)
    return pair(parent, "p2", "g2", 3, day, call_flat=True)


def amounts(st: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in st.items:  # type: ignore[attr-defined]
        out[item.code] = out.get(item.code, 0) + item.amount_yen
    return out


def test_r65_first_month_one_off_plans_options_never_prorated() -> None:
    st = billing.statement(two_groups(), "2026-04", {}, FEES)
    assert amounts(st) == {"one_off": 4 * 1500, "plan": 1650 + 2500, "call_flat": 2 * 1080}
    assert st.total_yen == 6000 + 4150 + 2160


def test_r65_second_month_no_one_off() -> None:
    st = billing.statement(two_groups(), "2026-05", {"g1": 3 * GB, "g2": 0}, FEES)
    assert amounts(st) == {"plan": 4150, "call_flat": 2160}
    assert (st.excess_bytes, st.overage_gb) == (0, 0)


def test_r65_overage_of_all_groups_added_then_rounded_up() -> None:
    # 0.2 GB over in one group and 0.9 GB over in the other: 1.1 GB → 2 GB → 600 yen.
    usage = {"g1": 3 * GB + 200_000_000, "g2": 10 * GB + 900_000_000}
    st = billing.statement(two_groups(), "2026-05", usage, FEES)
    assert (st.excess_bytes, st.overage_gb) == (1_100_000_000, 2)
    assert amounts(st)["overage"] == 600


def test_r65_overage_one_byte_over_is_one_gb() -> None:
    st = billing.statement(two_groups(), "2026-05", {"g1": 3 * GB + 1}, FEES)
    assert amounts(st)["overage"] == 300


def test_r63_a_group_under_capacity_does_not_offset_another() -> None:
    st = billing.statement(two_groups(), "2026-05", {"g1": 4 * GB, "g2": 1 * GB}, FEES)
    assert (st.overage_gb, amounts(st)["overage"]) == (1, 300)


def test_r64_plan_change_billed_from_next_month_with_next_month_capacity() -> None:
    parent, _ = changes.change_plan(two_groups(), "g1", "30GB", D(2026, 4, 20))
    april = billing.statement(parent, "2026-04", {"g1": 5 * GB}, FEES)
    may = billing.statement(parent, "2026-05", {"g1": 5 * GB}, FEES)
    assert (amounts(april)["plan"], april.overage_gb) == (1650 + 2500, 2)
    assert (amounts(may)["plan"], may.overage_gb) == (3750 + 2500, 0)


def test_r65_org_share_packs_plan_fee_and_overage_against_packs() -> None:
    day = D(2026, 4, 1)
    parent = changes.new_parent("P2", "org_share", 5, day)
    parent = changes.add_group(parent, "ga", "data", "org_share", day)
    parent = changes.add_group(parent, "gb", "voice", "org_share", day)
    parent = pair(parent, "p1", "ga", 1, day)
    parent = pair(parent, "p2", "gb", 3, day)
    st = billing.statement(parent, "2026-05", {"ga": 3 * GB, "gb": 2 * GB + 500_000_000}, FEES)
    assert amounts(st) == {"plan": 1050 + 1100, "packs": 5 * 220, "overage": 300}
    assert st.excess_bytes == 500_000_000


def test_r65_terminated_mid_month_pays_the_full_month_then_nothing() -> None:
    parent = changes.terminate_parent(two_groups(), D(2026, 5, 10), D(2026, 5, 20))  # ends 9 June
    june = billing.statement(parent, "2026-06", {}, FEES)
    july = billing.statement(parent, "2026-07", {}, FEES)
    assert amounts(june) == {"plan": 4150, "call_flat": 2160}
    assert july.items == ()


def test_r65_sim_change_and_reissue_fees_in_their_month() -> None:
    parent = changes.change_card(two_groups(), "817000000001", "x1", "y1", "esim", "sim_change", D(2026, 5, 3))
    parent = changes.change_card(parent, "817000000003", "x3", "y3", "multi_ff", "reissue", D(2026, 5, 4))
    parent = changes.change_card(parent, "817000000004", "x4", "y4", "multi_ff", "reissue", D(2026, 6, 1))
    may = amounts(billing.statement(parent, "2026-05", {}, FEES))
    assert (may["sim_change"], may["reissue"]) == (1500, 1500)
    assert amounts(billing.statement(parent, "2026-06", {}, FEES))["reissue"] == 1500


def test_r65_disaster_priority_billed_on_its_one_line_at_configured_amount() -> None:
    parent = changes.set_disaster(two_groups(), "p2", "D", D(2026, 4, 10))
    fees = PublicSafetySettings(disaster_priority_yen=500)
    st = billing.statement(parent, "2026-05", {}, fees)
    assert amounts(st)["disaster_priority"] == 500


def test_r65_call_flat_stop_billed_through_its_last_month() -> None:
    parent, _ = changes.set_call_flat(two_groups(), "p2", False, D(2026, 5, 10))  # last month: June
    assert amounts(billing.statement(parent, "2026-06", {}, FEES))["call_flat"] == 2160
    assert "call_flat" not in amounts(billing.statement(parent, "2026-07", {}, FEES))
