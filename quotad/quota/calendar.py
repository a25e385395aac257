"""Japan-time calendar rules for coupons (SPEC R-10, R-11, R-22).

Pure functions: an instant is a float epoch, a calendar day or month is read in the configured
time zone (Asia/Tokyo by default). "End of a month" is the first instant of the next month, so a
bucket whose expiry is that instant is gone at it (R-14).
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

JAPAN = "Asia/Tokyo"
MB = 1_000_000


@lru_cache(maxsize=16)
def zone(tz: str) -> ZoneInfo:
    """The ZoneInfo for a name (cached)."""
    return ZoneInfo(tz)


def local(now: float, tz: str = JAPAN) -> dt.datetime:
    """The wall-clock time of an instant in the zone."""
    return dt.datetime.fromtimestamp(now, zone(tz))


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    """(year, month) moved by n months (n may be negative)."""
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def month_start_instant(year: int, month: int, tz: str = JAPAN) -> float:
    """First instant of the month in the zone, as an epoch."""
    return dt.datetime(year, month, 1, tzinfo=zone(tz)).timestamp()


def month_end_instant(year: int, month: int, tz: str = JAPAN) -> float:
    """End of the month: the first instant of the next month."""
    return month_start_instant(*add_months(year, month, 1), tz=tz)


def bundle_expiry(year: int, month: int, tz: str = JAPAN) -> float:
    """R-10: the bundle of a month expires at the end of the following month."""
    return month_end_instant(*add_months(year, month, 1), tz=tz)


def coupon_expiry(now: float, tz: str = JAPAN) -> float:
    """R-11: a coupon bought now is usable to the end of the third month after this one."""
    day = local(now, tz)
    return month_end_instant(*add_months(day.year, day.month, 3), tz=tz)


def days_in_month(year: int, month: int) -> int:
    """Number of days in the month (leap years included)."""
    return _cal.monthrange(year, month)[1]


def prorated_bundle(size: int, start: dt.date) -> int:
    """R-10: size * (days from start to month end, both included) / days in month, down to a whole MB."""
    total = days_in_month(start.year, start.month)
    remaining = total - start.day + 1
    return (size * remaining // total) // MB * MB


def month_key_of(year: int, month: int) -> str:
    """Month key "YYYYMM"."""
    return f"{year:04d}{month:02d}"


def month_key(now: float, tz: str = JAPAN) -> str:
    """Month key "YYYYMM" of the instant in the zone."""
    day = local(now, tz)
    return month_key_of(day.year, day.month)


def day_key(now: float, tz: str = JAPAN) -> str:
    """Day key "YYYYMMDD" of the instant in the zone."""
    return local(now, tz).strftime("%Y%m%d")


def date_key(day: dt.date) -> str:
    """Day key "YYYYMMDD" of a calendar date."""
    return day.strftime("%Y%m%d")


def window_day_keys(now: float, tz: str = JAPAN, days: int = 3) -> list[str]:
    """R-22: the day keys of the window: the current day first, then the days before it."""
    today = local(now, tz).date()
    return [date_key(today - dt.timedelta(days=n)) for n in range(days)]


def previous_day_keys(now: float, tz: str = JAPAN, days: int = 3) -> list[str]:
    """R-35: the day keys of the days before the current one, most recent first."""
    today = local(now, tz).date()
    return [date_key(today - dt.timedelta(days=n)) for n in range(1, days + 1)]


def day_start(now: float, tz: str = JAPAN) -> float:
    """The first instant (midnight) of the day holding the instant, in the zone, as an epoch."""
    day = local(now, tz).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz)).timestamp()


def next_day_start(now: float, tz: str = JAPAN) -> float:
    """The first instant (midnight) of the day after the one holding the instant, in the zone."""
    day = local(now, tz).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz)).timestamp()
