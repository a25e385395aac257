"""Public-safety rules (SPEC §6, R-60 … R-65) as pure functions, with exact dates."""

from __future__ import annotations

import datetime as dt

import pytest

from quotad.publicsafety import changes, rules
from quotad.publicsafety.model import LineSpec, PairApplication, Parent, Schedule
from quotad.publicsafety.rules import RuleError

D = dt.date
APRIL_1 = D(2026, 4, 1)


def spec(n: int, sim: str = "multi_ff") -> LineSpec:
    return LineSpec(msisdn=f"8170000000{n:02d}", iccid=f"89810000000000{n:02d}", imsi=f"4401000000000{n:02d}",
                    sim_type=sim, ipv4=f"203.0.113.{n}", ipv6_prefix=f"2001:db8:0:{n:x}::/64")


def app(pair: str = "p1", group: str = "g1", n: int = 1, **kw: object) -> PairApplication:
    return PairApplication(pair_id=pair, group_id=group, d=spec(n), k=spec(n + 1), **kw)  # type: ignore[arg-type]


def tree(item: str = "mobile", kind: str = "data", packs: int = 0, day: D = APRIL_1) -> Parent:
    parent = changes.new_parent("P1", item, packs, day)
    plan = "org_share" if item == "org_share" else "3GB"
    parent = changes.add_group(parent, "g1", kind, plan, day)
    return changes.add_pair(parent, app(), day)


# -- plan and pack changes ------------------------------------------------------------------

@pytest.mark.parametrize(("asked", "effective"), [
    (D(2026, 3, 30), "2026-04"), (D(2026, 3, 1), "2026-04"), (D(2026, 12, 15), "2027-01"),
    (D(2024, 2, 28), "2024-03"), (D(2026, 2, 27), "2026-03"),
])
def test_r64_change_takes_effect_next_month(asked: D, effective: str) -> None:
    assert rules.change_month(asked, "plan") == effective


@pytest.mark.parametrize("asked", [D(2026, 3, 31), D(2026, 4, 30), D(2026, 2, 28), D(2024, 2, 29), D(2026, 12, 31)])
def test_r64_change_refused_on_last_day_of_month(asked: D) -> None:
    with pytest.raises(RuleError) as err:
        rules.change_month(asked, "plan")
    assert (err.value.rule, err.value.field) == ("R-64", "plan")


def test_r64_leap_day_is_not_last_day_of_february_in_2024_but_28th_is_ok() -> None:
    assert rules.change_month(D(2024, 2, 28), "packs") == "2024-03"


def test_r64_plan_change_applies_from_next_month_only() -> None:
    parent, month = changes.change_plan(tree(), "g1", "30GB", D(2026, 4, 15))
    assert month == "2026-05"
    group = parent.group("g1")
    assert group is not None
    assert (group.plans.at("2026-04"), group.plans.at("2026-05"), group.plans.at("2026-09")) == ("3GB", "30GB", "30GB")


def test_r64_second_change_in_month_replaces_the_first() -> None:
    parent, _ = changes.change_plan(tree(), "g1", "30GB", D(2026, 4, 15))
    parent, _ = changes.change_plan(parent, "g1", "1GB", D(2026, 4, 20))
    group = parent.group("g1")
    assert group is not None and group.plans.steps == (("2026-04", "3GB"), ("2026-05", "1GB"))


def test_r64_plan_change_on_31_march_refused() -> None:
    with pytest.raises(RuleError) as err:
        changes.change_plan(tree(day=D(2026, 3, 1)), "g1", "10GB", D(2026, 3, 31))
    assert err.value.rule == "R-64"


def test_r64_pack_change_next_month_and_refused_on_last_day() -> None:
    parent = tree("org_share", packs=5)
    parent, month = changes.change_packs(parent, 8, D(2026, 4, 10))
    assert (month, parent.packs.at("2026-04"), parent.packs.at("2026-05")) == ("2026-05", 5, 8)
    with pytest.raises(RuleError) as err:
        changes.change_packs(parent, 9, D(2026, 4, 30))
    assert (err.value.rule, err.value.field) == ("R-64", "packs")


def test_r63_packs_only_under_org_share() -> None:
    with pytest.raises(RuleError) as err:
        changes.change_packs(tree(), 3, D(2026, 4, 10))
    assert (err.value.rule, err.value.field) == ("R-63", "packs")
    with pytest.raises(RuleError):
        changes.new_parent("P2", "org_share", 0, D(2026, 4, 1))
    with pytest.raises(RuleError):
        changes.new_parent("P2", "mobile", 2, D(2026, 4, 1))


def test_r63_group_plan_must_match_item() -> None:
    parent = changes.new_parent("P1", "mobile", 0, D(2026, 4, 1))
    with pytest.raises(RuleError) as err:
        changes.add_group(parent, "g1", "data", "org_share", D(2026, 4, 1))
    assert (err.value.field, err.value.rule) == ("plan", "R-63")
    with pytest.raises(RuleError):
        changes.add_group(parent, "g1", "data", "5GB", D(2026, 4, 1))
    org = changes.new_parent("P2", "org_share", 3, D(2026, 4, 1))
    with pytest.raises(RuleError):
        changes.add_group(org, "g1", "data", "3GB", D(2026, 4, 1))


# -- termination dates and pairs ------------------------------------------------------------

@pytest.mark.parametrize(("notice", "requested", "effective"), [
    (D(2026, 5, 10), D(2026, 5, 20), D(2026, 6, 9)),
    (D(2026, 5, 10), D(2026, 7, 1), D(2026, 7, 1)),
    (D(2026, 5, 10), D(2026, 6, 9), D(2026, 6, 9)),
    (D(2026, 1, 31), D(2026, 1, 31), D(2026, 3, 2)),
    (D(2024, 1, 31), D(2024, 1, 31), D(2024, 3, 1)),
    (D(2026, 12, 15), D(2026, 12, 15), D(2027, 1, 14)),
])
def test_r61_termination_later_of_notice_plus_30_days_and_requested(notice: D, requested: D, effective: D) -> None:
    assert rules.termination_date(notice, requested) == effective


def test_r61_line_termination_ends_partner_at_month_end() -> None:
    parent = changes.terminate_line(tree(), "817000000001", D(2026, 5, 10), D(2026, 5, 20))
    d, k = parent.line("817000000001"), parent.line("817000000002")
    assert d is not None and k is not None
    assert (d.ends, k.ends) == (D(2026, 6, 9), D(2026, 6, 30))


def test_r60_group_ends_at_month_end_once_all_lines_ended() -> None:
    parent = changes.terminate_line(tree(), "817000000002", D(2026, 5, 10), D(2026, 5, 20))
    group = parent.group("g1")
    assert group is not None and group.ends == D(2026, 6, 30)


def test_r60_group_with_a_live_pair_does_not_end() -> None:
    parent = changes.add_pair(tree(), app("p2", n=3), D(2026, 4, 2))
    parent = changes.terminate_line(parent, "817000000001", D(2026, 5, 10), D(2026, 5, 20))
    group = parent.group("g1")
    line3 = parent.line("817000000003")
    assert group is not None and group.ends is None and line3 is not None and line3.ends is None


def test_r60_parent_termination_ends_groups_and_lines_same_day() -> None:
    parent = changes.add_group(tree(), "g2", "voice", "1GB", D(2026, 4, 1))
    parent = changes.add_pair(parent, app("p2", "g2", 3), D(2026, 4, 1))
    parent = changes.terminate_parent(parent, D(2026, 5, 10), D(2026, 5, 20))
    assert parent.ends == D(2026, 6, 9)
    assert {g.ends for g in parent.groups} == {D(2026, 6, 9)}
    assert {ln.ends for ln in parent.lines} == {D(2026, 6, 9)}


def test_r60_group_termination_ends_its_lines_same_day_only() -> None:
    parent = changes.add_group(tree(), "g2", "data", "1GB", D(2026, 4, 1))
    parent = changes.add_pair(parent, app("p2", "g2", 3), D(2026, 4, 1))
    parent = changes.terminate_group(parent, "g2", D(2026, 5, 10), D(2026, 8, 31))
    ends = {ln.msisdn: ln.ends for ln in parent.lines}
    assert ends == {"817000000001": None, "817000000002": None, "817000000003": D(2026, 8, 31),
                    "817000000004": D(2026, 8, 31)}


def test_r61_an_earlier_end_is_never_moved_later() -> None:
    parent = changes.terminate_line(tree(), "817000000001", D(2026, 5, 10), D(2026, 5, 10))
    parent = changes.terminate_line(parent, "817000000002", D(2026, 5, 10), D(2026, 9, 1))
    k = parent.line("817000000002")
    assert k is not None and k.ends == D(2026, 6, 30)


def test_r61_ended_line_cannot_be_terminated_again() -> None:
    parent = changes.terminate_line(tree(), "817000000001", D(2026, 5, 10), D(2026, 5, 10))
    with pytest.raises(RuleError) as err:
        changes.terminate_line(parent, "817000000001", D(2026, 7, 1), D(2026, 7, 1))
    assert (err.value.kind, err.value.rule) == ("conflict", "R-61")


def test_r61_pair_sides_types_and_sim_types() -> None:
    parent = tree()
    pair = parent.pair("p1")
    d, k = parent.line("817000000001"), parent.line("817000000002")
    assert pair is not None and d is not None and k is not None
    assert (d.line_type, k.line_type, d.sim_type) == ("D", "K", "multi_ff")
    bad = PairApplication("p2", "g1", spec(3, "nano"), spec(4))
    with pytest.raises(RuleError) as err:
        changes.add_pair(parent, bad, D(2026, 4, 1))
    assert (err.value.field, err.value.rule) == ("d_sim_type", "R-61")


def test_r61_pair_needs_distinct_numbers_and_cards() -> None:
    same = PairApplication("p2", "g1", spec(3), spec(3))
    with pytest.raises(RuleError) as err:
        changes.add_pair(tree(), same, D(2026, 4, 1))
    assert (err.value.field, err.value.rule) == ("k_msisdn", "R-61")


def test_r61_duplicate_line_refused() -> None:
    with pytest.raises(RuleError) as err:
        changes.add_pair(tree(), app("p2", n=2), D(2026, 4, 1))
    assert (err.value.kind, err.value.field) == ("conflict", "d_msisdn")


def test_r62_addresses_checked() -> None:
    bad = PairApplication("p2", "g1", spec(3), LineSpec("817000000099", "i", "m", "esim", "300.1.1.1", "2001:db8::/64"))
    with pytest.raises(RuleError) as err:
        changes.add_pair(tree(), bad, D(2026, 4, 1))
    assert (err.value.field, err.value.rule) == ("k_ipv4", "R-62")
    bad6 = PairApplication("p2", "g1", spec(3), LineSpec("817000000099", "i", "m", "esim", "203.0.113.99",
                                                         "2001:db8::1/64"))
    with pytest.raises(RuleError) as err:
        changes.add_pair(tree(), bad6, D(2026, 4, 1))
    assert (err.value.field, err.value.rule) == ("k_ipv6_prefix", "R-62")


# -- pair options ---------------------------------------------------------------------------

def test_r65_call_flat_only_on_voice_and_on_both_lines() -> None:
    with pytest.raises(RuleError) as err:
        changes.add_pair(changes.add_group(changes.new_parent("P", "mobile", 0, D(2026, 4, 1)), "g1", "data", "1GB",
                                           D(2026, 4, 1)), app(call_flat=True), D(2026, 4, 1))
    assert (err.value.field, err.value.rule) == ("call_flat", "R-65")
    parent = changes.add_pair(changes.add_group(changes.new_parent("P", "mobile", 0, D(2026, 4, 1)), "g1", "voice",
                                                "1GB", D(2026, 4, 1)), app(call_flat=True), D(2026, 4, 1))
    pair = parent.pair("p1")
    assert pair is not None and pair.call_flat.at("2026-04") is True


def test_r65_disaster_priority_on_one_line_only() -> None:
    parent = tree(kind="voice")
    parent = changes.set_disaster(parent, "p1", "K", D(2026, 4, 5))
    pair = parent.pair("p1")
    assert pair is not None and pair.disaster == "K"
    with pytest.raises(RuleError) as err:
        changes.set_disaster(parent, "p1", "both", D(2026, 4, 5))
    assert (err.value.field, err.value.rule) == ("disaster_priority", "R-65")
    with pytest.raises(RuleError):
        changes.set_disaster(tree(kind="data"), "p1", "D", D(2026, 4, 5))


def test_r65_call_flat_start_next_month_stop_after_notice_plus_30_days_month() -> None:
    parent, start = changes.set_call_flat(tree(kind="voice"), "p1", True, D(2026, 4, 5))
    assert start == "2026-05"
    parent, stop = changes.set_call_flat(parent, "p1", False, D(2026, 6, 10))
    pair = parent.pair("p1")
    assert stop == "2026-08"  # 10 June + 30 days = 10 July: last month with the option is July
    assert pair is not None
    assert [pair.call_flat.at(m) for m in ("2026-04", "2026-05", "2026-07", "2026-08")] == [False, True, True, False]


def test_r65_sim_change_and_reissue_record_fees() -> None:
    parent = changes.change_card(tree(), "817000000001", "8981999", "4401999", "esim", "sim_change", D(2026, 4, 9))
    line = parent.line("817000000001")
    assert line is not None and (line.sim_type, line.iccid, line.imsi) == ("esim", "8981999", "4401999")
    assert [(e.kind, e.day) for e in parent.events] == [("sim_change", D(2026, 4, 9))]
    with pytest.raises(RuleError) as err:
        changes.change_card(parent, "817000000001", "8981998", "4401998", "esim", "reissue", D(2026, 4, 9))
    assert (err.value.field, err.value.rule) == ("sim_type", "R-65")
    with pytest.raises(RuleError):
        changes.change_card(parent, "817000000002", "8981997", "4401997", "multi_ff", "sim_change", D(2026, 4, 9))


def test_schedule_value_by_month() -> None:
    s = Schedule((("2026-04", 1), ("2026-06", 2)))
    assert [s.at(m) for m in ("2026-03", "2026-04", "2026-05", "2026-06", "2027-01")] == [None, 1, 1, 2, 2]


def _days(year: int) -> list[D]:
    start = D(year, 1, 1)
    return [start + dt.timedelta(days=i) for i in range((D(year + 1, 1, 1) - start).days)]


@pytest.mark.parametrize("year", [2024, 2026])
def test_r64_every_day_of_a_year(year: int) -> None:
    """Exhaustive: refused exactly on the 12 last days (29 Feb in a leap year), else the next month."""
    refused = []
    for day in _days(year):
        try:
            month = rules.change_month(day, "plan")
        except RuleError:
            refused.append(day)
            continue
        nxt = day.replace(day=1) + dt.timedelta(days=32)
        assert month == f"{nxt.year:04d}-{nxt.month:02d}"
    feb = 29 if year == 2024 else 28
    assert refused == [rules.month_end(D(year, m, 1)) for m in range(1, 13)]
    assert D(year, 2, feb) in refused


@pytest.mark.parametrize("year", [2024, 2026])
def test_r61_every_notice_day_of_a_year(year: int) -> None:
    """Exhaustive: the effect is notice + 30 days unless a later date was asked; the partner's end
    is the last day of that month."""
    for notice in _days(year):
        floor = notice + dt.timedelta(days=30)
        for requested in (notice, floor - dt.timedelta(days=1), floor, floor + dt.timedelta(days=1)):
            effective = rules.termination_date(notice, requested)
            assert effective == max(floor, requested)
            partner = rules.partner_end(effective)
            assert (partner.year, partner.month) == (effective.year, effective.month)
            assert (partner + dt.timedelta(days=1)).day == 1
