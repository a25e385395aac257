"""Japan-time calendar rules: R-10 (bundle), R-11 (coupon), R-22 (3-day window)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotad.quota import calendar as cal

JST = dt.timezone(dt.timedelta(hours=9))


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """Epoch of a Japan wall-clock time."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=JST).timestamp()


def test_month_end_is_first_instant_of_next_month() -> None:
    assert cal.month_end_instant(2025, 4) == at(2025, 5, 1)
    assert cal.month_start_instant(2025, 4) == at(2025, 4, 1)


def test_month_end_wraps_the_year() -> None:
    assert cal.month_end_instant(2025, 12) == at(2026, 1, 1)


def test_month_end_other_time_zone() -> None:
    assert cal.month_end_instant(2025, 4, "UTC") == dt.datetime(2025, 5, 1, tzinfo=dt.UTC).timestamp()


def test_r10_bundle_expires_end_of_following_month() -> None:
    assert cal.bundle_expiry(2025, 4) == at(2025, 6, 1)
    assert cal.bundle_expiry(2025, 11) == at(2026, 1, 1)
    assert cal.bundle_expiry(2025, 12) == at(2026, 2, 1)


def test_r10_leap_february_2028() -> None:
    assert cal.days_in_month(2028, 2) == 29
    assert cal.days_in_month(2027, 2) == 28
    assert cal.bundle_expiry(2028, 1) == at(2028, 3, 1)
    # 1 GB from 15 Feb 2028: 15 of 29 days → 517.24… MB → 517 MB.
    assert cal.prorated_bundle(1_000_000_000, dt.date(2028, 2, 15)) == 517_000_000


def test_r10_prorated_15th_of_30_day_month() -> None:
    # 15 April .. 30 April, both included: 16 days of 30 → 533.33… MB → 533 MB.
    assert cal.prorated_bundle(1_000_000_000, dt.date(2025, 4, 15)) == 533_000_000


def test_r10_prorated_first_and_last_day() -> None:
    assert cal.prorated_bundle(1_000_000_000, dt.date(2025, 5, 1)) == 1_000_000_000
    # 31 May: 1 of 31 days → 32.25… MB → 32 MB.
    assert cal.prorated_bundle(1_000_000_000, dt.date(2025, 5, 31)) == 32_000_000


def test_r10_no_bundle_prorates_to_zero() -> None:
    assert cal.prorated_bundle(0, dt.date(2025, 4, 15)) == 0


def test_r11_march_purchase_usable_to_end_of_june() -> None:
    assert cal.coupon_expiry(at(2025, 3, 10, 12)) == at(2025, 7, 1)


def test_r11_coupon_expiry_wraps_the_year() -> None:
    assert cal.coupon_expiry(at(2025, 11, 30, 23, 59)) == at(2026, 3, 1)


def test_r11_month_is_read_in_japan_time() -> None:
    # 31 March 16:00 UTC is already 1 April in Japan: usable to end of July.
    utc = dt.datetime(2025, 3, 31, 16, 0, tzinfo=dt.UTC).timestamp()
    assert cal.coupon_expiry(utc) == at(2025, 8, 1)
    assert cal.month_key(utc) == "202504"
    assert cal.month_key(utc, "UTC") == "202503"


def test_keys() -> None:
    now = at(2025, 1, 2, 8)
    assert cal.month_key(now) == "202501"
    assert cal.day_key(now) == "20250102"


def test_r22_window_is_today_and_two_days_before_across_year() -> None:
    assert cal.window_day_keys(at(2025, 1, 2, 0, 0)) == ["20250102", "20250101", "20241231"]


def test_r22_window_across_leap_day() -> None:
    assert cal.window_day_keys(at(2028, 3, 1, 23, 59)) == ["20280301", "20280229", "20280228"]


def test_r35_previous_days() -> None:
    assert cal.previous_day_keys(at(2025, 3, 1, 10)) == ["20250228", "20250227", "20250226"]


@pytest.mark.parametrize(("ym", "n", "expected"), [
    ((2025, 1), -1, (2024, 12)), ((2025, 12), 1, (2026, 1)), ((2025, 3), 3, (2025, 6)), ((2025, 5), -17, (2023, 12)),
])
def test_add_months(ym: tuple[int, int], n: int, expected: tuple[int, int]) -> None:
    assert cal.add_months(*ym, n) == expected


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
       st.integers(min_value=0, max_value=10**12))
def test_r10_prorated_is_whole_mb_and_never_more_than_exact(start: dt.date, size: int) -> None:
    got = cal.prorated_bundle(size, start)
    total = cal.days_in_month(start.year, start.month)
    exact = size * (total - start.day + 1) / total
    assert got % cal.MB == 0
    assert got <= exact < got + cal.MB + 1


@given(st.floats(min_value=946_684_800, max_value=4_102_444_800))
def test_r11_coupon_expiry_is_a_month_start_three_months_on(now: float) -> None:
    expiry = cal.local(cal.coupon_expiry(now))
    bought = cal.local(now)
    assert (expiry.day, expiry.hour, expiry.minute, expiry.second) == (1, 0, 0, 0)
    assert cal.add_months(bought.year, bought.month, 4) == (expiry.year, expiry.month)


def test_day_start_is_the_japan_midnight_not_the_utc_one() -> None:
    """2026-12-01 02:00 Japan time is 2026-11-30 17:00 UTC: its day began at 00:00 Japan time on the 1st."""
    now = at(2026, 12, 1, 2)
    assert cal.day_start(now) == at(2026, 12, 1)
    assert cal.next_day_start(now) == at(2026, 12, 2)
    assert cal.day_start(now, "UTC") == dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()


def test_day_start_at_midnight_and_the_instant_before() -> None:
    assert cal.day_start(at(2027, 1, 1)) == at(2027, 1, 1)
    assert cal.day_start(at(2027, 1, 1) - 0.001) == at(2026, 12, 31)
    assert cal.next_day_start(at(2026, 12, 31, 23, 59, 59)) == at(2027, 1, 1)


@given(st.integers(min_value=int(at(2000, 1, 1)), max_value=int(at(2100, 1, 1))))
def test_every_instant_lies_in_its_japan_day(now: int) -> None:
    start, end = cal.day_start(now), cal.next_day_start(now)
    assert start <= now < end
    assert end - start == 86400  # Japan keeps no daylight saving time
    assert cal.day_key(start) == cal.day_key(now) != cal.day_key(end)
