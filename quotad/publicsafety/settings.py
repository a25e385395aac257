"""The `[publicsafety]` configuration section: fee amounts (R-65), the heavy-use restriction
(R-63) and which APNs carry public-safety lines.

Amounts are yen, from seed 002 (別紙1) where it states them; where the seed says "an amount the
provider shows separately" (disaster-priority calling) the default is 0, to be configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PLAN_NAMES = ("1GB", "3GB", "10GB", "30GB", "org_share")


def _data_plan_yen() -> dict[str, int]:
    return {"1GB": 1200, "3GB": 1650, "10GB": 2450, "30GB": 3750, "org_share": 1050}


def _voice_plan_yen() -> dict[str, int]:
    return {"1GB": 1250, "3GB": 1700, "10GB": 2500, "30GB": 3800, "org_share": 1100}


@dataclass(frozen=True, slots=True)
class PublicSafetySettings:
    apns: tuple[str, ...] = ()  # APN names (each also under [[apns]]) whose SIMs are public-safety lines
    one_off_yen: int = 1500  # per line, in the month it is added
    plan_yen_data: dict[str, int] = field(default_factory=_data_plan_yen)  # per group per month
    plan_yen_voice: dict[str, int] = field(default_factory=_voice_plan_yen)
    pack_yen_per_gb: int = 220  # org packet share, per 1 GB pack per month
    overage_yen_per_gb: int = 300  # excess of all groups added up, rounded up to whole GB
    call_flat_yen: int = 1080  # call flat-rate option, per voice line per month
    disaster_priority_yen: int = 0  # not stated by the seed ("shown separately"): configure it
    sim_change_yen: int = 1500  # SIM type change, each
    reissue_yen: int = 1500  # card reissue, each
    heavy_use_bytes: int = 0  # a line past this over heavy_use_days is restricted; 0 = off
    heavy_use_days: int = 3  # the Japan days summed: today and the days before it


def check(ps: PublicSafetySettings, apn_names: set[str], problems: list[tuple[str, str]]) -> None:
    """Append (key, reason) for every bad public-safety setting."""
    for name in ps.apns:
        if name.lower() not in apn_names:
            problems.append(("publicsafety.apns", f"{name!r} is not an APN under [[apns]]"))
    for key in ("plan_yen_data", "plan_yen_voice"):
        table: dict[str, int] = getattr(ps, key)
        if set(table) != set(PLAN_NAMES):
            problems.append((f"publicsafety.{key}", f"must give exactly {', '.join(PLAN_NAMES)}"))
        for plan, yen in table.items():
            if isinstance(yen, int) and yen < 0:
                problems.append((f"publicsafety.{key}.{plan}", "must not be negative"))
    for key in ("one_off_yen", "pack_yen_per_gb", "overage_yen_per_gb", "call_flat_yen", "disaster_priority_yen",
                "sim_change_yen", "reissue_yen", "heavy_use_bytes"):
        if getattr(ps, key) < 0:
            problems.append((f"publicsafety.{key}", "must not be negative"))
    if not 1 <= ps.heavy_use_days <= 31:
        problems.append(("publicsafety.heavy_use_days", "must be between 1 and 31"))
