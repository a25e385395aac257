"""Which address leases this process renewed lately, so that a report or a re-authorization need
not renew again.

Every Accounting Start/Interim renews its session's address lease (R-5), and every attach leases
(or re-leases) one. On the hot path each is a second script call on the IP pool's slot: a third of
the Redis work of a request. A lease is ``lease_seconds`` long, so renewing it again within a
quarter of that changes nothing that matters: the lease still has at least three quarters of its
length to run. This memo remembers when this process last renewed (or leased) each owner's
address, or tried to renew one that had no lease, and says when a renewal is due. A lease made
after such a try (by an attach) starts with its full length, so skipping its renewals for a
quarter of it is as safe.

For an attach on a single Redis (the pipelining client) the memo also keeps the address and the
session's generation (a token the attach script writes when it records a session). A
re-authorization within the window sends only the attach script, with the generation it
expects; the script confirms the session is the same live one. Every way a lease is given back
before it lapses changes that: a Stop marks the session stopped (the next attach records a new
generation) and a refused attach clears the generation. If the script does not confirm, the
store leases as before. Notes are only taken and trusted on one connection to Redis: a
reconnect (Redis restarted, perhaps without its last second of writes) clears them. On Redis
Cluster, where the lease and the session live on different nodes that fail over apart, no notes
are taken; renewals are still skipped, which is safe anywhere.

A memo entry only ever *skips* a renewal. It never stands in for a lease: an address is still
leased, released and reclaimed by the scripts alone.

Memory is bounded by two generations of entries: entries move to the old generation after one
window and are gone after two, so only owners renewed within the last two windows are held, and
by ``max_entries`` per generation (about 340 bytes an entry): past it, new owners are not noted
and their renewals simply go to Redis as before. Keys are str and values tuples of float and
str, which the cyclic garbage collector stops tracking.
"""

from __future__ import annotations

Entry = tuple[float, str, str]  # renewed at, address ('' if unknown), session generation


class RenewalMemo:
    """Owner → when this process last renewed its lease; ``due`` after ``window`` seconds."""

    __slots__ = ("_current", "_previous", "_rotated_at", "max_entries", "window")

    def __init__(self, lease_seconds: float, max_entries: int = 100_000) -> None:
        self.window = lease_seconds / 4
        self.max_entries = max_entries
        self._current: dict[str, Entry] = {}
        self._previous: dict[str, Entry] = {}
        self._rotated_at: float | None = None

    def _fresh(self, owner: str, now: float) -> Entry | None:
        entry = self._current.get(owner)
        if entry is None:
            entry = self._previous.get(owner)
        if entry is None or not 0 <= now - entry[0] < self.window:
            return None
        return entry

    def due(self, owner: str, now: float) -> bool:
        """True if this process has not renewed the owner's lease within the window."""
        return self._fresh(owner, now) is None

    def lease(self, owner: str, now: float) -> tuple[str, str] | None:
        """(address, session generation) of a lease this process made within the window."""
        entry = self._fresh(owner, now)
        if entry is None or not entry[1]:
            return None
        return entry[1], entry[2]

    def renewed(self, owner: str, now: float, address: str = "", generation: str = "") -> None:
        """The owner's lease was renewed (or leased, at ``address`` for the session ``generation``)
        at ``now``; a renewal that does not name the address keeps what an attach noted."""
        if self._rotated_at is None:
            self._rotated_at = now
        elif now - self._rotated_at >= self.window:
            self._previous, self._current = self._current, {}
            self._rotated_at = now
        known = self._current.get(owner)
        if known is None:
            known = self._previous.get(owner)
            if len(self._current) >= self.max_entries:  # full: this owner's renewals go to Redis
                self._previous.pop(owner, None)
                return
        if not address and known is not None:
            address, generation = known[1], known[2]
        self._current[owner] = (now, address, generation)

    def clear(self) -> None:
        """Forget everything (Redis may have restarted and lost the last leases)."""
        self._current.clear()
        self._previous.clear()

    def forget(self, owner: str) -> None:
        """The owner's lease was released (or found missing): its next lease starts afresh."""
        self._current.pop(owner, None)
        self._previous.pop(owner, None)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
