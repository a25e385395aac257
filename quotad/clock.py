"""Time for the whole daemon: the real clock, and a settable one for tests and simulations.

Calendar rules (months, Japan days, expiry) are computed from ``Clock.now()`` in Python and
passed to Redis scripts, so moving a SettableClock moves everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


@dataclass
class SettableClock:
    """A clock that stands still until moved: for tests and virtual-time simulation."""

    current: float

    def now(self) -> float:
        return self.current

    def set(self, when: float) -> None:
        self.current = when

    def advance(self, seconds: float) -> None:
        self.current += seconds
