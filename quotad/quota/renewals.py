"""Which address leases this process renewed lately, so that an Interim need not renew again.

Every Accounting Start/Interim renews its session's address lease (R-5), and on the hot path that
renewal is a second script call on the IP pool's slot: a third of the Redis work of a report. A
lease is ``lease_seconds`` long, so renewing it again within a quarter of that changes nothing that
matters: the lease still has at least three quarters of its length to run. This memo remembers
when this process last renewed (or leased) each owner's address, or tried to renew one that had
no lease, and says when a renewal is due. A lease made after such a try (by an attach) starts
with its full length, so skipping its renewals for a quarter of it is as safe.

A memo entry only ever *skips* a renewal. It never stands in for a lease: an address is still
leased, released and reclaimed by the scripts alone. A stale entry (the session stopped in another
process) skips a renewal that would have found no lease anyway.

Memory is bounded by two generations: entries move to the old generation after one window and are
gone after two, so only owners renewed within the last two windows are held. Keys are str and
values float, which the cyclic garbage collector does not track.
"""

from __future__ import annotations


class RenewalMemo:
    """Owner → the time this process last renewed its lease; ``due`` after ``window`` seconds."""

    __slots__ = ("_current", "_previous", "_rotated_at", "window")

    def __init__(self, lease_seconds: float) -> None:
        self.window = lease_seconds / 4
        self._current: dict[str, float] = {}
        self._previous: dict[str, float] = {}
        self._rotated_at: float | None = None

    def due(self, owner: str, now: float) -> bool:
        """True if this process has not renewed the owner's lease within the window."""
        last = self._current.get(owner)
        if last is None:
            last = self._previous.get(owner)
        return last is None or not 0 <= now - last < self.window

    def renewed(self, owner: str, now: float) -> None:
        """The owner's lease was renewed (or leased) at ``now``."""
        if self._rotated_at is None:
            self._rotated_at = now
        elif now - self._rotated_at >= self.window:
            self._previous, self._current = self._current, {}
            self._rotated_at = now
        self._current[owner] = now

    def forget(self, owner: str) -> None:
        """The owner's lease was released: its next lease starts afresh."""
        self._current.pop(owner, None)
        self._previous.pop(owner, None)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
