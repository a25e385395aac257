"""The speed decision (SPEC §4): facts about a line and its plan in, a speed class out. Pure."""

from __future__ import annotations

from typing import Protocol

from quotad.policy.plans import Plan

HIGH = "high"
LOW = "low"
RESTRICTED = "restricted"

RAT_UTRAN = 1  # 3GPP-RAT-Type: UTRAN (3G)


class SpeedFacts(Protocol):
    """What the decision reads about a line (quota.model.LineFacts has these fields)."""

    @property
    def coupon_on(self) -> bool: ...
    @property
    def held(self) -> int: ...
    @property
    def pool(self) -> int: ...
    @property
    def low_3day(self) -> int: ...


def decide_speed(facts: SpeedFacts, plan: Plan) -> str:
    """Speed class of a line.

    R-21: coupon switch OFF → low. R-15: the line's held data and its pool both empty → low,
    whatever sibling lines hold. R-22: at low speed, usage over the 3-day window strictly
    greater than the plan's limit → restricted. Otherwise high.
    """
    if facts.coupon_on and (facts.held > 0 or facts.pool > 0):
        return HIGH
    if facts.low_3day > plan.low_limit_3day_bytes:
        return RESTRICTED
    return LOW


def profile_name(speed: str, rat_type: int | None) -> str:
    """Speed profile for a speed class; R-6: only the top speed depends on the radio type."""
    if speed == HIGH:
        return "high-3g" if rat_type == RAT_UTRAN else "high-lte"
    if speed in (LOW, RESTRICTED):
        return speed
    raise ValueError(f"unknown speed class {speed!r}")
