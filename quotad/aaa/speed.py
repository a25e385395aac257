"""The one path of a line's speed change (R-21, R-24): decide → compare-and-set → count → push.

Every change of a line's speed class goes through ``SpeedChanges.apply``, whoever finds it: an
attach, an accounting report, the JST-midnight timer or an operator's change (both by
``SessionControl.redecide``), and the public-safety path. The compare-and-set in Redis
(``set_speed``) lets exactly one of several quotad processes win a transition; the winner counts
it (``quotad_speed_changes_total``) and queues the push of the new speed to the line's live
sessions (aaa.sessions), which runs in the background.

What differs by caller is said by name, never by a copy of the path:
- ``told``: the session whose own reply already carries the new speed (the attaching session's
  Access-Accept). It is left out of the push: a CoA racing that Accept reaches a gateway that has
  not set the session up, which refuses it with Error-Cause 503, and quotad would then end the
  session it just accepted (tests/integration/test_coa_e2e.py).
- ``with_grant``: the CoA carries the line's grant (Quotad-Granted-Octets, and a slice drawn when
  the line comes back to high speed, R-12). Public-safety lines hold no slice: False.
A line whose speed was never recorded ("" before its first attach) has no session that was told
one, so its first decision is recorded and nothing is pushed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from quotad import metrics
from quotad.policy.decide import HIGH, LOW, RESTRICTED, decide_speed
from quotad.policy.plans import PlanCatalog
from quotad.quota.model import LineFacts, LineRef


class SpeedStore(Protocol):
    async def set_speed(self, ref: LineRef, expected: str, new: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Push:
    """A speed to push to a line's live sessions (but ``told``), with or without its grant."""

    speed: str
    with_grant: bool = True
    told: str = ""


Pusher = Callable[[LineRef, Push], None]


class SpeedChanges:
    """Decide a line's speed from its facts and apply the change; ``push`` queues the CoA (None:
    nothing is pushed, as in a process without a CoA client)."""

    def __init__(self, store: SpeedStore, catalog: PlanCatalog, push: Pusher | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.push = push
        self._counters = {speed: metrics.SPEED_CHANGES.labels(speed) for speed in (HIGH, LOW, RESTRICTED)}

    def decide(self, facts: LineFacts) -> str:
        """The speed the line's facts and plan call for (policy.decide)."""
        return decide_speed(facts, self.catalog.get(facts.plan))

    async def follow(self, ref: LineRef, facts: LineFacts, *, told: str = "") -> tuple[str, bool]:
        """Decide from ``facts`` and apply: (the speed, whether this process changed it)."""
        speed = self.decide(facts)
        return speed, await self.apply(ref, facts.speed, speed, told=told)

    async def apply(self, ref: LineRef, old: str, new: str, *, told: str = "", with_grant: bool = True) -> bool:
        """Move the line from ``old`` to ``new``; True if this process won the compare-and-set
        (then the change is counted and, when the line had a speed, queued for its sessions)."""
        if old == new or not await self.store.set_speed(ref, old, new):
            return False
        counter = self._counters.get(new)
        (counter if counter is not None else metrics.SPEED_CHANGES.labels(new)).inc()
        if old and self.push is not None:
            self.push(ref, Push(new, with_grant, told))
        return True
