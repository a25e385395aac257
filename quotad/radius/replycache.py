"""RFC 5080 §2.2.2 duplicate detection.

A request is known by (source address, source port, code, Identifier, Request Authenticator).
While it is being processed a retransmission is dropped; once answered, a retransmission within
the window gets the cached reply byte for byte and is not processed again. Entries expire after
the window; the cache is bounded (oldest entries go first), so a flood cannot grow it without end.
"""

from __future__ import annotations

from collections import deque

Key = tuple[str, int, int, int, bytes]

IN_PROGRESS = b""


class ReplyCache:
    def __init__(self, window: float, max_entries: int = 262144):
        self.window = window
        self.max_entries = max_entries
        self._entries: dict[Key, bytes] = {}
        self._order: deque[tuple[float, Key]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Key) -> bytes | None:
        """The cached reply, IN_PROGRESS (b"") while unanswered, or None for a new request."""
        return self._entries.get(key)

    def begin(self, key: Key, now: float) -> None:
        """Mark a new request as being processed."""
        self._expire(now)
        self._entries[key] = IN_PROGRESS
        self._order.append((now + self.window, key))
        if len(self._entries) > self.max_entries:
            self._evict_oldest()

    def finish(self, key: Key, reply: bytes | None) -> None:
        """Store the reply; None (no answer was sent) forgets the request so a retry is processed."""
        if key not in self._entries:
            return
        if reply is None:
            del self._entries[key]
        else:
            self._entries[key] = reply

    def _expire(self, now: float) -> None:
        order = self._order
        entries = self._entries
        while order and order[0][0] <= now:
            _, key = order.popleft()
            entries.pop(key, None)

    def _evict_oldest(self) -> None:
        while self._order and len(self._entries) > self.max_entries:
            _, key = self._order.popleft()
            self._entries.pop(key, None)
