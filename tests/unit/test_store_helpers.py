"""Small conversions on the hot path: leased addresses (R-5) between Redis integers and attributes."""

from __future__ import annotations

import ipaddress

import pytest

from quotad.aaa.values import ipv4_bytes, ipv4_text
from quotad.quota.leases import address_text


@pytest.mark.parametrize("address", [0, 1, 0x64400001, 0xC0A80101, 0xFFFFFFFF])
def test_leased_address_text_and_bytes(address: int) -> None:
    text = address_text(address)
    assert text == str(ipaddress.IPv4Address(address))
    assert ipv4_bytes(text) == address.to_bytes(4, "big")
    assert ipv4_text(ipv4_bytes(text)) == text


@pytest.mark.parametrize("address", [-1, 1 << 32])
def test_out_of_range_lease_is_refused(address: int) -> None:
    with pytest.raises(ValueError):
        address_text(address)


def test_the_clock_run_is_now_in_whole_seconds_the_calendar_and_the_rest_once_a_second() -> None:
    from quotad.quota.resp import flat
    from quotad.quota.runner import ClockRun, ScriptCalendar

    calendar = ScriptCalendar("Asia/Tokyo")
    now = 1764547199.75  # 2025-12-01 08:59:59.75 JST
    run = ClockRun(calendar, 10, 20, today=True)
    assert flat(run.at(now)) == [1764547199, *flat(calendar.month(now)), "20251201", 10, 20]
    assert run.at(now + 0.2) is run.at(now)  # the same second: encoded once
    assert flat(run.at(now + 1))[0] == 1764547200
    assert flat(ClockRun(calendar, 7).at(now)) == [1764547199, *flat(calendar.month(now)), 7]
