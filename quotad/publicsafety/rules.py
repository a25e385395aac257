"""The public-safety service's rules (SPEC §6) as pure functions over dates and plain values.

Dates are Japan calendar dates (the caller converts "now" with quotad.quota.calendar). A date
that ends something is the last day of service, inclusive.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from quotad.publicsafety.model import (
    DISASTER_CHOICES,
    LINE_KINDS,
    SIM_TYPES,
    LineSpec,
    PairApplication,
)
from quotad.quota import calendar as cal

NOTICE_DAYS = 30  # a termination takes effect 30 days after notice at the earliest


class RuleError(Exception):
    """A request a rule refuses: the input at fault, the rule, and how (invalid, conflict, notfound)."""

    def __init__(self, message: str, field: str, rule: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule
        self.kind = kind


def month_of(day: dt.date) -> str:
    """The month "YYYY-MM" of a date."""
    return f"{day.year:04d}-{day.month:02d}"


def next_month(month: str) -> str:
    """The month after "YYYY-MM"."""
    year, mon = cal.add_months(int(month[:4]), int(month[5:7]), 1)
    return f"{year:04d}-{mon:02d}"


def month_end(day: dt.date) -> dt.date:
    """The last day of the date's month."""
    return day.replace(day=cal.days_in_month(day.year, day.month))


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of month "YYYY-MM"."""
    first = dt.date(int(month[:4]), int(month[5:7]), 1)
    return first, month_end(first)


def change_month(asked: dt.date, field: str) -> str:
    """R-64: a plan or pack-count change asked on `asked` takes effect from the next month; it
    cannot be asked on a month's last day."""
    if asked == month_end(asked):
        raise RuleError(f"{field} changes cannot be requested on the last day of a month ({asked})", field, "R-64")
    return next_month(month_of(asked))


def termination_date(notice: dt.date, requested: dt.date) -> dt.date:
    """R-61: a termination takes effect 30 days after notice, or on the date asked for, whichever is later."""
    return max(notice + dt.timedelta(days=NOTICE_DAYS), requested)


def partner_end(first_end: dt.date) -> dt.date:
    """R-61: one line of a pair ending ends the other at the end of that month."""
    return month_end(first_end)


def group_end(last_line_end: dt.date) -> dt.date:
    """R-60: a group whose lines have all ended ends at the end of the month of the last one."""
    return month_end(last_line_end)


def earlier(current: dt.date | None, new: dt.date) -> dt.date:
    """An end date never moves later: the earlier of the one set and the new one."""
    return new if current is None else min(current, new)


def in_service(started: dt.date, ends: dt.date | None, day: dt.date) -> bool:
    """True on the days from start to end, both included."""
    return started <= day and (ends is None or day <= ends)


def in_month(started: dt.date, ends: dt.date | None, month: str) -> bool:
    """True if in service on any day of the month (R-65: monthly fees are never pro-rated)."""
    first, last = month_bounds(month)
    return started <= last and (ends is None or ends >= first)


def call_flat_start(asked: dt.date) -> str:
    """Seed 002 art. 13-4: the call flat-rate option added later starts on the 1st of the next month."""
    return next_month(month_of(asked))


def call_flat_last_month(notice: dt.date) -> str:
    """Seed 002 art. 13-5: stopping the option takes effect at the first month end on or after
    notice + 30 days; that month is the last one with it."""
    return month_of(notice + dt.timedelta(days=NOTICE_DAYS))


def check_pair(app: PairApplication, kind: str) -> None:
    """R-61 / R-65: the two sides, their SIM types, addresses and the pair options."""
    if app.d.msisdn == app.k.msisdn:
        raise RuleError("the type D and type K lines must have different numbers", "k_msisdn", "R-61")
    for prefix, spec in (("d", app.d), ("k", app.k)):
        _check_side(prefix, spec)
    for attr in ("iccid", "imsi", "ipv4", "ipv6_prefix"):
        if getattr(app.d, attr) == getattr(app.k, attr):
            raise RuleError(f"the two lines of a pair cannot share {attr}", f"k_{attr}", "R-62" if "ip" in attr
                            else "R-61")
    if kind not in LINE_KINDS:
        raise RuleError(f"line kind must be one of {', '.join(LINE_KINDS)}", "kind", "R-61")
    if app.call_flat and kind != "voice":
        raise RuleError("the call flat-rate option is for voice lines only", "call_flat", "R-65")
    if app.disaster not in DISASTER_CHOICES:
        raise RuleError("disaster_priority must be none, D or K (one line of the pair at most)",
                        "disaster_priority", "R-65")
    if app.disaster != "none" and kind != "voice":
        raise RuleError("disaster-priority calling is for voice lines only", "disaster_priority", "R-65")


def _check_side(prefix: str, spec: LineSpec) -> None:
    if spec.sim_type not in SIM_TYPES:
        raise RuleError(f"SIM type must be one of {', '.join(SIM_TYPES)}", f"{prefix}_sim_type", "R-61")
    check_ipv4(spec.ipv4, f"{prefix}_ipv4")
    check_ipv6_prefix(spec.ipv6_prefix, f"{prefix}_ipv6_prefix")


def check_ipv4(value: str, field: str) -> str:
    """R-62: a fixed IPv4 host address."""
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        raise RuleError(f"{field} must be an IPv4 address", field, "R-62") from None
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback:
        raise RuleError(f"{field} must be a unicast host address", field, "R-62")
    return str(addr)


def check_ipv6_prefix(value: str, field: str) -> str:
    """R-62: a fixed IPv6 prefix, e.g. 2001:db8:1:2::/64 (length 48 to 128, host bits zero)."""
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError:
        raise RuleError(f"{field} must be an IPv6 prefix such as 2001:db8::/64", field, "R-62") from None
    if "/" not in value or not 48 <= net.prefixlen <= 128:
        raise RuleError(f"{field} must give a prefix length from 48 to 128", field, "R-62")
    return str(net)


def heavy_use_restricted(window_bytes: int, threshold: int) -> bool:
    """R-63: past capacity a line keeps its speed; only heavy use over the configured window (a
    threshold of 0 turns the restriction off) restricts it. Strictly more than the threshold."""
    return threshold > 0 and window_bytes > threshold


def requested_address_allowed(requested: str | None, fixed: str) -> bool:
    """R-62: an Access-Request may name no address, or the line's own; any other is refused."""
    return requested is None or requested == fixed
