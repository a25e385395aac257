"""RFC 5080 duplicate detection cache (R-70)."""

from __future__ import annotations

from quotad.radius.replycache import IN_PROGRESS, ReplyCache

KEY = ("127.0.0.1", 40000, 1, 7, bytes(16))


def test_new_in_progress_answered() -> None:
    cache = ReplyCache(window=30)
    assert cache.lookup(KEY) is None
    cache.begin(KEY, now=100.0)
    assert cache.lookup(KEY) == IN_PROGRESS
    cache.finish(KEY, b"reply")
    assert cache.lookup(KEY) == b"reply"


def test_entries_expire_after_window() -> None:
    cache = ReplyCache(window=30)
    cache.begin(KEY, now=100.0)
    cache.finish(KEY, b"reply")
    other = ("127.0.0.1", 40001, 1, 7, bytes(16))
    cache.begin(other, now=129.9)
    assert cache.lookup(KEY) == b"reply"
    cache.begin(("x", 1, 1, 1, b""), now=130.0)
    assert cache.lookup(KEY) is None
    assert cache.lookup(other) == IN_PROGRESS


def test_no_reply_forgets_so_a_retry_is_processed() -> None:
    """R-71: a request that got no answer (Redis down) is processed again when retried."""
    cache = ReplyCache(window=30)
    cache.begin(KEY, now=1.0)
    cache.finish(KEY, None)
    assert cache.lookup(KEY) is None


def test_bounded() -> None:
    cache = ReplyCache(window=30, max_entries=100)
    for i in range(1000):
        cache.begin(("127.0.0.1", i, 1, 1, b""), now=1.0)
    assert len(cache) == 100
    assert cache.lookup(("127.0.0.1", 999, 1, 1, b"")) == IN_PROGRESS
    assert cache.lookup(("127.0.0.1", 0, 1, 1, b"")) is None
