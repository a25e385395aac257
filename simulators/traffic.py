"""Traffic models of simulated handsets: what a handset's apps would move, capped by the rate.

A model (``simulators/traffic.toml``, one per radio: ``lte``, ``3g``) is a set of activities —
idle, browsing, video, bulk update — each with a demand in bit/s, a weight and a mean dwell
time. :class:`Traffic` is one handset's walk through them. Pure: no I/O, no clock; the caller
passes the time and the random generator, so runs are reproducible from a seed.

The bound every caller relies on: ``Traffic.step(seconds, cap)`` never moves more than
``cap * seconds / 8`` capped octets in either direction. On a profile with a zero-rating rule
(R-23: the low-speed profiles' Quotad-Exempt-Rule) an activity's ``zero_rated_share`` of its
demand (DNS, mail, the provider's web) goes beside the cap and is reported apart.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

DEFAULT_FILE = Path(__file__).with_name("traffic.toml")
ACTIVITIES = ("idle", "browsing", "video", "bulk")


class TrafficModelError(ValueError):
    """A bad traffic model file; the message names the key."""


@dataclass(frozen=True, slots=True)
class Activity:
    name: str
    down_bps: int
    up_bps: int
    weight: float
    dwell_seconds: float
    zero_rated_share: float = 0.0  # part of the demand bound for zero-rated services


class Moved(NamedTuple):
    """Octets moved in one step: capped traffic, and the zero-rated traffic beside the cap."""

    down: int
    up: int
    exempt_down: int = 0
    exempt_up: int = 0


@dataclass(frozen=True, slots=True)
class TrafficModel:
    """One radio's activities."""

    name: str
    activities: tuple[Activity, ...]

    def pick(self, rng: random.Random) -> Activity:
        """The next activity, by weight."""
        return rng.choices(self.activities, weights=[a.weight for a in self.activities])[0]

    def dwell(self, activity: Activity, rng: random.Random) -> float:
        """How long the activity lasts (exponential around its mean, at least one second)."""
        return max(1.0, rng.expovariate(1.0 / activity.dwell_seconds))


@dataclass(frozen=True, slots=True)
class Rate:
    """A speed profile's caps in bit/s."""

    down_bps: int
    up_bps: int


def capped_octets(demand_bps: float, cap_bps: float, seconds: float) -> int:
    """Octets moved in ``seconds`` by a demand under a cap: floor(min(demand, cap) * seconds / 8)."""
    if seconds <= 0:
        return 0
    return int(max(0.0, min(demand_bps, cap_bps)) * seconds // 8)


@dataclass(slots=True)
class Traffic:
    """One handset's traffic: the activity it is in and until when (seconds into its life)."""

    model: TrafficModel
    rng: random.Random
    activity: Activity | None = None
    left: float = 0.0  # seconds the current activity still lasts
    history: list[str] = field(default_factory=list)

    def step(self, seconds: float, cap: Rate, zero_rating: bool = False) -> Moved:
        """Octets moved over the next ``seconds``: the capped part at most ``cap``; with
        ``zero_rating`` the activity's zero-rated share goes beside the cap."""
        down = up = exempt_down = exempt_up = 0
        remaining = seconds
        while remaining > 0:
            if self.activity is None or self.left <= 0:
                self.activity = self.model.pick(self.rng)
                self.left = self.model.dwell(self.activity, self.rng)
                self.history.append(self.activity.name)
            a = self.activity
            piece = min(remaining, self.left)
            share = a.zero_rated_share if zero_rating else 0.0
            down += capped_octets(a.down_bps * (1 - share), cap.down_bps, piece)
            up += capped_octets(a.up_bps * (1 - share), cap.up_bps, piece)
            exempt_down += capped_octets(a.down_bps * share, a.down_bps, piece)
            exempt_up += capped_octets(a.up_bps * share, a.up_bps, piece)
            self.left -= piece
            remaining -= piece
        # Sums of floors over the pieces stay under the whole; clamp anyway against float drift.
        return Moved(min(down, capped_octets(cap.down_bps, cap.down_bps, seconds)),
                     min(up, capped_octets(cap.up_bps, cap.up_bps, seconds)), exempt_down, exempt_up)


def load_models(path: Path | str = DEFAULT_FILE) -> dict[str, TrafficModel]:
    """Every model of a traffic file, by radio name ("lte", "3g")."""
    data = tomllib.loads(Path(path).read_text())
    return {radio: _model(radio, table) for radio, table in data.items()}


def _model(radio: str, table: object) -> TrafficModel:
    if not isinstance(table, dict) or not table:
        raise TrafficModelError(f"{radio}: must be a table of activities")
    activities = []
    for name, spec in table.items():
        key = f"{radio}.{name}"
        if not isinstance(spec, dict):
            raise TrafficModelError(f"{key}: must be a table")
        try:
            activity = Activity(
                name, int(spec["down_bps"]), int(spec["up_bps"]), float(spec["weight"]), float(spec["dwell_seconds"]),
                float(spec.get("zero_rated_share", 0.0)),
            )
        except KeyError as exc:
            raise TrafficModelError(f"{key}.{exc.args[0]}: missing") from exc
        if min(activity.down_bps, activity.up_bps) < 0 or activity.weight <= 0 or activity.dwell_seconds <= 0:
            raise TrafficModelError(f"{key}: rates must be ≥ 0, weight and dwell_seconds > 0")
        if not 0.0 <= activity.zero_rated_share <= 1.0:
            raise TrafficModelError(f"{key}.zero_rated_share: must be between 0 and 1")
        activities.append(activity)
    return TrafficModel(radio, tuple(activities))
