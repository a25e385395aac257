"""The plan catalog (SPEC §3). Plans are configuration; the three shipped ones are the default."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1_000_000
GB = 1_000 * MB


@dataclass(slots=True, frozen=True)
class Plan:
    """A consumer plan: how many lines, the monthly bundle (0: none), the 3-day low-speed limit."""

    name: str
    max_lines: int
    bundle_bytes: int
    low_limit_3day_bytes: int


@dataclass(slots=True)
class PlanCatalog:
    """Plans by name."""

    plans: dict[str, Plan]

    def get(self, name: str) -> Plan:
        """The plan called name; KeyError if there is none."""
        try:
            return self.plans[name]
        except KeyError:
            raise KeyError(f"unknown plan {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.plans


def default_catalog() -> PlanCatalog:
    """The shipped plans (SPEC §3)."""
    plans = [
        Plan("minimum_start", max_lines=1, bundle_bytes=0, low_limit_3day_bytes=366 * MB),
        Plan("light_start", max_lines=1, bundle_bytes=1 * GB, low_limit_3day_bytes=120 * MB),
        Plan("family_share", max_lines=3, bundle_bytes=1 * GB, low_limit_3day_bytes=366 * MB),
    ]
    return PlanCatalog({plan.name: plan for plan in plans})
