"""Virtual-time scenarios (issue 6) against an in-process daemon on a settable clock: everything
the simulated gateway moved is counted by quotad exactly once (R-16, R-17, R-71), slices come out
of the pool (R-12), and a dry pool, a purchase and the coupon switch move the live session by CoA
(R-15, R-21, R-24)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from simulators import cli
from simulators import scenario as sc

MB = 1_000_000
FAMILY = Path(sc.__file__).with_name("scenarios") / "family_month.toml"

GREEDY_TRAFFIC = """
[lte.bulk]
down_bps = 30_000_000
up_bps = 1_000_000
weight = 1
dwell_seconds = 1e9
"""

DRY_POOL = """
name = "one heavy SIM, 100 MB, a purchase"
start = "2026-11-10T12:00:00+09:00"
days = 0.01                             # 864 s
step_seconds = 60
interim_interval = 600
traffic_file = "greedy.toml"

[contract]
id = "mini-sim"
plan = "minimum_start"
start_date = "2026-10-01"
units = 1

[[lines]]
msisdn = "819000000201"
imsi = "440100000000201"
iccid = "8981100000000002016"
gap_minutes = -1

[[actions]]
day = 0.005                             # 432 s in: one more coupon
kind = "charge"
units = 1
"""


async def test_three_days_of_a_family_everything_moved_is_counted_once(redis_url: str) -> None:
    """R-12/R-16/R-71: over 3 virtual days, per line quotad's high+low usage plus the zero-rated
    octets (R-23) equals the octets the gateway moved, and the pool went down by exactly what was
    used plus what the SIMs still hold."""
    plan = dataclasses.replace(sc.load(FAMILY), days=3)
    report = await sc.run(plan, redis_url)
    assert [d.day for d in report.days] == [1, 2, 3]
    assert report.final is not None
    assert sum(report.used.values()) > 0
    for msisdn, moved in report.used.items():
        assert sum(report.counted[msisdn]) + report.exempt[msisdn] == moved, msisdn
    high = sum(hi for hi, _ in report.counted.values())
    held = sum(line.held for line in report.final.lines)
    assert report.initial_pool - report.final.pool - held == high
    assert all(line.sessions == 0 and line.overrun == 0 for line in report.final.lines)


async def test_dry_pool_goes_low_by_coa_and_a_purchase_brings_it_back(redis_url: str, tmp_path: Path) -> None:
    """R-15/R-24: 100 MB used up → CoA to `low`, no drop; R-11/R-24: a coupon bought → CoA to
    `high-lte`; used up again → `low`. High-speed usage is exactly the 200 MB bought; the rest was
    moved at 200 kbit/s and counted as low-speed usage (R-17)."""
    (tmp_path / "greedy.toml").write_text(GREEDY_TRAFFIC)
    (tmp_path / "dry.toml").write_text(DRY_POOL)
    report = await sc.run(sc.load(tmp_path / "dry.toml"), redis_url)
    coas = [e.detail.split()[0] for e in report.events if e.kind == "coa"]
    assert coas == ["low", "high-lte", "low"]
    assert report.coa == {"coa-ack": 3}
    assert [e.kind for e in report.events].count("accept") == 1, "one session throughout"
    assert report.final is not None
    line = report.final.lines[0]
    assert (report.final.pool, line.held, line.overrun, line.speed) == (0, 0, 0, "low")
    high, low = report.counted["819000000201"]
    assert high == 200 * MB
    assert high + low == report.used["819000000201"]
    assert 0 < low <= 864 * 200_000 // 8


async def test_quotad_config_of_the_scenario_sets_the_slice(redis_url: str, tmp_path: Path) -> None:
    """`quotad_config` runs the daemon on the scenario's own settings: slices of 50 MB (R-12,
    configurable) in the accept and the first re-authorization, instead of 10 MB."""
    (tmp_path / "greedy.toml").write_text(GREEDY_TRAFFIC)
    (tmp_path / "quotad.toml").write_text("[quota]\nslice_bytes = 50000000\n")
    (tmp_path / "dry.toml").write_text('quotad_config = "quotad.toml"\n' + DRY_POOL)
    report = await sc.run(sc.load(tmp_path / "dry.toml"), redis_url)
    grants = [int(e.detail.split()[-1]) for e in report.events if e.kind in ("accept", "slice")]
    assert grants[:3] == [50 * MB, 50 * MB, 0], "a slice, the next slice, then the pool is dry"
    assert report.counted["819000000201"][0] == 200 * MB


IDLE_TRAFFIC = """
[lte.idle]
down_bps = 500
up_bps = 200
weight = 1
dwell_seconds = 1e9
zero_rated_share = 0.5
"""

NO_COUPONS = """
name = "minimum_start without coupons: a day at low speed"
start = "2026-11-10T00:00:00+09:00"
days = 1
traffic_file = "idle.toml"

[contract]
id = "mini-low"
plan = "minimum_start"
start_date = "2026-10-01"

[[lines]]
msisdn = "819000000301"
imsi = "440100000000301"
iccid = "8981100000000003011"
"""


async def test_zero_rated_traffic_at_low_speed_is_reported_and_not_counted(redis_url: str, tmp_path: Path) -> None:
    """R-23: at `low` (no coupons, R-15) the profile's zero-rating rule lets half of the idle traffic
    (push mail, DNS) beside the cap; the gateway reports it in Quotad-Exempt-*-Octets and quotad
    counts only the other half as low-speed usage."""
    (tmp_path / "idle.toml").write_text(IDLE_TRAFFIC)
    (tmp_path / "low.toml").write_text(NO_COUPONS)
    report = await sc.run(sc.load(tmp_path / "low.toml"), redis_url)
    accepts = [e.detail for e in report.events if e.kind == "accept"]
    assert accepts == ["low slice 0"]
    moved, exempt = report.used["819000000301"], report.exempt["819000000301"]
    assert exempt * 2 == moved > 0
    assert report.counted["819000000301"] == (0, moved - exempt)


# -- the public-safety month (docs/public-safety.md, R-60 … R-65) ---------------------------------

PUBLIC_SAFETY = Path(sc.__file__).with_name("scenarios") / "public_safety_month.toml"
JST = dt.timezone(dt.timedelta(hours=9))


def jst(month: int, day: int, year: int = 2026) -> float:
    return dt.datetime(year, month, day, tzinfo=JST).timestamp()


async def test_public_safety_month_every_request_and_check_gets_the_answer_expected(redis_url: str) -> None:
    """The shipped public-safety scenario: every API request (plans and packs from next month,
    refused on a month's last day, terminations with 30 days' notice, November's overage on the
    statements, none in December) and every attach check passes; every octet moved is counted
    once; a terminated line is never accepted after its last day (Japan time)."""
    plan = sc.load(PUBLIC_SAFETY)
    report = await sc.run(plan, redis_url)
    assert [c.what for c in report.failed] == []
    assert len(report.checks) == len(plan.requests) + len(plan.checks) == 30
    attaches = [(c.what.split()[1], c.detail) for c in report.checks if c.what.startswith("attach")]
    assert attaches == [
        ("817000002004", "accept (high-lte)"), ("817000002004", "reject: Line is terminated"),
        ("817000002003", "accept (high-lte)"), ("817000002003", "accept (high-lte)"),
        ("817000002006", "accept (high-lte)"), ("817000002003", "reject: Line is terminated"),
        ("817000002006", "reject: Line is terminated"), ("817000002001", "accept (high-lte)"),
    ]
    assert report.final is None and report.days[0].pool is None  # no consumer contract
    for msisdn, moved in report.used.items():
        assert report.counted[msisdn] == (moved, 0), msisdn  # never throttled, counted once
    last_day = {"817000002004": jst(12, 22), "817000002003": jst(1, 1, 2027), "817000002005": jst(1, 1, 2027)}
    for msisdn, end in last_day.items():
        accepts = [e.at for e in report.events if e.msisdn == msisdn and e.kind == "accept"]
        rejects = [e for e in report.events if e.msisdn == msisdn and e.kind == "reject"]
        assert max(accepts) < end <= min(e.at for e in rejects), msisdn
        assert {e.detail for e in rejects} == {"Line is terminated"}
    assert {e.msisdn for e in report.events if e.kind == "reject"} == {
        "817000002003", "817000002004", "817000002005", "817000002006"}


WRONG = """
name = "a wrong expectation"
start = "2026-11-30T10:00:00+09:00"
days = 0.05
step_seconds = 600
quotad_config = "quotad.toml"

[[lines]]
msisdn = "817000009001"
imsi = "440100000090001"
iccid = "8981100000000090011"
apn = "ps.example.jp"

[[requests]]
day = 0
method = "POST"
path = "/v1/public-safety/contracts"
body = { id = "p9", item = "mobile", packs = 0 }

[[requests]]
day = 0
method = "POST"
path = "/v1/public-safety/contracts/p9/groups"
body = { id = "g9", kind = "data", plan = "1GB" }

[[requests]]
day = 0.01
method = "PUT"
path = "/v1/public-safety/contracts/p9/groups/g9/plan"
body = { plan = "3GB" }
expect = { effective_month = "2026-12" }

[[checks]]
day = 0.02
attach = "817000009001"
expect = "accept"
"""


def test_a_scenario_whose_answers_differ_fails_its_checks_and_exits_1(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On 30 November the plan change is refused (R-64), not the 2xx the file expects; the SIM of no
    pair is refused, not accepted: both fail, named, and `quotad-sim scenario` exits 1."""
    (tmp_path / "quotad.toml").write_text(PUBLIC_SAFETY.with_name("public_safety_month.quotad.toml").read_text())
    (tmp_path / "wrong.toml").write_text(WRONG)
    assert cli.main(["scenario", str(tmp_path / "wrong.toml"), "--virtual", "--redis", redis_url]) == 1
    out = capsys.readouterr().out
    assert "requests and checks: 2 passed, 2 failed" in out
    failed = [line.split("  ", 2)[-1] for line in out.splitlines() if line.startswith("  FAIL")]
    assert failed == [
        "PUT /v1/public-safety/contracts/p9/groups/g9/plan  → 422 rule_violation (field plan, rule R-64): "
        "status 422, expected 2xx; effective_month: missing",
        "attach 817000009001  → reject: Unknown SIM, expected accept",
    ]


@pytest.mark.parametrize(("text", "message"), [
    ('[[actions]]\nday = 1\nkind = "charge"\nunits = 1\n', "actions: they change the consumer contract"),
    ('[[checks]]\nday = 1\nattach = "819000000999"\nexpect = "accept"\n', "checks[0].attach: 819000000999 is not"),
    ('[[requests]]\nday = 1\nmethod = "PATCH"\npath = "/v1/x"\n', "requests[0].method: one of GET"),
    ('[[requests]]\nday = 1\nmethod = "GET"\npath = "/v1/x"\nbogus = 1\n', "requests[0]: "),
])
def test_bad_scenario_files_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    base = 'start = "2026-11-01T00:00:00+09:00"\n[[lines]]\nmsisdn = "1"\nimsi = "2"\niccid = "3"\n'
    (tmp_path / "bad.toml").write_text(base + text)
    with pytest.raises(sc.ScenarioError, match=re.escape(message)):
        sc.load(tmp_path / "bad.toml")


def test_matches_names_what_differs() -> None:
    answer = {"a": 1, "b": [{"c": "x", "d": True}, {"c": "y"}], "e": None}
    assert sc.matches({"a": 1, "b": [{"c": "x"}, {}]}, answer) == []
    assert sc.matches({"a": 2, "b": [{"d": 1}, {"c": "y"}], "f": 0}, answer) == [
        "a: 1, expected 2", "b[0].d: true, expected 1", "f: missing"]
    assert sc.matches({"b": [{}]}, answer) == ['b: [{"c": "x", "d": true}, {"c": "y"}], expected 1 items']
