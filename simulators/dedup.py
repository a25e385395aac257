"""Duplicate detection for the gateway's RFC 5176 port (RFC 5080 §2.2.2, RFC 5176 §2.3).

quotad resends an unanswered CoA/Disconnect-Request as the very same datagram. A copy of a
request already answered must get the same answer, not be applied again: a second Disconnect for
a session the first one ended would otherwise be NAKed as unknown. Pure: the caller passes the
time.
"""

from __future__ import annotations

from collections import OrderedDict

Key = tuple[str, int, int, bytes]  # source address, source port, Identifier, Request Authenticator


class ReplyCache:
    """Replies by request, kept ``window`` seconds (at most ``limit`` of them)."""

    def __init__(self, window: float = 30.0, limit: int = 65536) -> None:
        self.window = window
        self.limit = limit
        self._replies: OrderedDict[Key, tuple[float, bytes]] = OrderedDict()

    @staticmethod
    def key(datagram: bytes, addr: tuple[str, int]) -> Key | None:
        """The request's identity, or None for a datagram too short to have one."""
        if len(datagram) < 20:
            return None
        return addr[0], addr[1], datagram[1], bytes(datagram[4:20])

    def get(self, key: Key, now: float) -> bytes | None:
        self._expire(now)
        hit = self._replies.get(key)
        return None if hit is None else hit[1]

    def put(self, key: Key, reply: bytes, now: float) -> None:
        self._replies[key] = (now, reply)
        self._replies.move_to_end(key)
        while len(self._replies) > self.limit:
            self._replies.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._replies:
            key, (at, _) = next(iter(self._replies.items()))
            if now - at < self.window:
                return
            del self._replies[key]
