"""RFC 5080 §2.2.2 duplicate detection.

A request is known by (source address, source port, code, Identifier, Request Authenticator).
While it is being processed a retransmission is dropped; once answered, a retransmission within
the window gets the cached reply byte for byte and is not processed again. Entries expire after
the window, checked on every lookup and every insert (time passed in), so a resend that comes after
the window on an idle port is a new request, not answered from a stale entry. The cache is bounded
(oldest entries go first), so a flood cannot grow it without end.

The cache holds a window's worth of requests (tens of thousands per worker at load), so it is
built only of objects the cyclic garbage collector does not track: keys are ``bytes``, replies
are ``bytes``, and the expiry order is two deques (floats, keys) rather than a deque of tuples.
Tuples would sit in the collector's youngest generation until the next collection, which then
has to walk all of them: a pause of tens of milliseconds, measured (docs/reliability.md).
"""

from __future__ import annotations

from collections import deque

Key = bytes

IN_PROGRESS = b""


def request_key(host: str, port: int, header: bytes) -> Key:
    """The duplicate-detection key of a request from ``host``:``port`` whose packet starts with
    ``header`` (code, Identifier, Length, Request Authenticator: the first 20 octets)."""
    return b"%b%b%d %b" % (header[:2], header[4:20], port, host.encode())


class ReplyCache:
    def __init__(self, window: float, max_entries: int = 262144):
        self.window = window
        self.max_entries = max_entries
        self._entries: dict[Key, bytes] = {}
        # Each entry's own expiry: a request that got no answer and was retried is queued twice,
        # and only its latest expiry may remove it.
        self._deadline: dict[Key, float] = {}
        self._expiry: deque[float] = deque()
        self._keys: deque[Key] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Key, now: float) -> bytes | None:
        """The cached reply, IN_PROGRESS (b"") while unanswered, or None for a new request (also
        once its entry is older than the window: entries that have expired by ``now`` go first)."""
        expiry = self._expiry
        if expiry and expiry[0] <= now:
            self._expire(now)
        return self._entries.get(key)

    def begin(self, key: Key, now: float) -> None:
        """Mark a new request as being processed."""
        self._expire(now)
        self._entries[key] = IN_PROGRESS
        self._deadline[key] = now + self.window
        self._expiry.append(now + self.window)
        self._keys.append(key)
        if len(self._entries) > self.max_entries:
            self._evict_oldest()

    def finish(self, key: Key, reply: bytes | None) -> None:
        """Store the reply; None (no answer was sent) forgets the request so a retry is processed."""
        if key not in self._entries:
            return
        if reply is None:
            del self._entries[key]
            del self._deadline[key]
        else:
            self._entries[key] = reply

    def _expire(self, now: float) -> None:
        expiry, keys = self._expiry, self._keys
        while expiry and expiry[0] <= now:
            self._drop(keys.popleft(), expiry.popleft())

    def _evict_oldest(self) -> None:
        while self._keys and len(self._entries) > self.max_entries:
            self._drop(self._keys.popleft(), self._expiry.popleft())

    def _drop(self, key: Key, expiry: float) -> None:
        """Forget a queued key, unless it was queued again later (a retry) and this is the old one."""
        if self._deadline.get(key) == expiry:
            del self._deadline[key]
            del self._entries[key]
