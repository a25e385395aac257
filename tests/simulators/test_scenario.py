"""Virtual-time scenarios (issue 6) against an in-process daemon on a settable clock: everything
the simulated gateway moved is counted by quotad exactly once (R-16, R-17, R-71), slices come out
of the pool (R-12), and a dry pool, a purchase and the coupon switch move the live session by CoA
(R-15, R-21, R-24)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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
