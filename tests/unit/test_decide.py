"""The speed decision table (SPEC §4) and profile names (R-6)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from quotad.policy.decide import decide_speed, profile_name
from quotad.policy.plans import default_catalog

MB = 1_000_000
CATALOG = default_catalog()


@dataclass
class Facts:
    coupon_on: bool = True
    held: int = 0
    pool: int = 0
    low_3day: int = 0


ROWS = [
    # rule, plan, facts, expected
    ("R-15 held data → high", "family_share", Facts(held=4 * MB), "high"),
    ("R-15 pool only → high", "family_share", Facts(pool=1), "high"),
    ("R-15 held and pool empty → low (sibling data irrelevant)", "family_share", Facts(), "low"),
    ("R-21 coupon OFF with data → low", "light_start", Facts(coupon_on=False, held=5 * MB, pool=MB), "low"),
    ("R-22 low, window at the limit → low", "family_share", Facts(low_3day=366 * MB), "low"),
    ("R-22 low, window past the limit → restricted", "family_share", Facts(low_3day=366 * MB + 1),
     "restricted"),
    ("R-22 coupon OFF, past 120 MB on light_start → restricted", "light_start",
     Facts(coupon_on=False, held=MB, low_3day=120 * MB + 1), "restricted"),
    ("R-22 high speed usage does not count: high even past the limit", "light_start",
     Facts(pool=MB, low_3day=500 * MB), "high"),
    ("R-15 minimum_start with no coupons → low", "minimum_start", Facts(), "low"),
    ("R-22 back under the limit → low", "minimum_start", Facts(low_3day=365 * MB), "low"),
]


@pytest.mark.parametrize(("rule", "plan", "facts", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_decide_speed(rule: str, plan: str, facts: Facts, expected: str) -> None:
    assert decide_speed(facts, CATALOG.get(plan)) == expected


def test_decide_accepts_line_facts() -> None:
    from quotad.quota.model import LineFacts

    facts = LineFacts(plan="family_share", status="active", coupon_on=True, held=0, pool=0,
                      low_3day=0, speed="high")
    assert decide_speed(facts, CATALOG.get("family_share")) == "low"


@pytest.mark.parametrize(("speed", "rat", "expected"), [
    ("high", 6, "high-lte"),  # EUTRAN
    ("high", None, "high-lte"),  # no RAT type → LTE
    ("high", 1, "high-3g"),  # UTRAN
    ("low", 1, "low"),
    ("restricted", 6, "restricted"),
])
def test_r6_profile_name(speed: str, rat: int | None, expected: str) -> None:
    assert profile_name(speed, rat) == expected


def test_profile_name_unknown_speed() -> None:
    with pytest.raises(ValueError, match="unknown speed"):
        profile_name("turbo", None)


def test_catalog_plans() -> None:
    assert CATALOG.get("family_share").max_lines == 3
    assert CATALOG.get("light_start").bundle_bytes == 1_000_000_000
    assert CATALOG.get("light_start").low_limit_3day_bytes == 120 * MB
    assert CATALOG.get("minimum_start").bundle_bytes == 0
    with pytest.raises(KeyError):
        CATALOG.get("gold")
