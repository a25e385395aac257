"""RFC 5080 duplicate detection cache (R-70)."""

from __future__ import annotations

import gc

from quotad.radius.replycache import IN_PROGRESS, ReplyCache, request_key

HEADER = bytes([1, 7, 0, 20]) + bytes(16)
KEY = request_key("127.0.0.1", 40000, HEADER)


def test_new_in_progress_answered() -> None:
    cache = ReplyCache(window=30)
    assert cache.lookup(KEY, now=100.0) is None
    cache.begin(KEY, now=100.0)
    assert cache.lookup(KEY, now=100.0) == IN_PROGRESS
    cache.finish(KEY, b"reply")
    assert cache.lookup(KEY, now=101.0) == b"reply"


def test_an_insert_sweeps_entries_past_the_window() -> None:
    """A new request sweeps the entries whose window has passed, oldest first."""
    cache = ReplyCache(window=30)
    cache.begin(KEY, now=100.0)
    cache.finish(KEY, b"reply")
    other = request_key("127.0.0.1", 40001, HEADER)
    cache.begin(other, now=129.9)
    assert len(cache) == 2
    cache.begin(request_key("x", 1, HEADER), now=130.0)
    assert len(cache) == 2
    assert cache.lookup(KEY, now=130.0) is None
    assert cache.lookup(other, now=130.0) == IN_PROGRESS


def test_a_lookup_after_the_window_misses_with_no_insert_between() -> None:
    """On an idle port nothing else arrives to sweep: a resend 25 s after a 10 s window is a new
    request, not answered with the stale reply; one just inside the window still gets it."""
    cache = ReplyCache(window=10)
    cache.begin(KEY, now=100.0)
    cache.finish(KEY, b"reply")
    assert cache.lookup(KEY, now=109.9) == b"reply"
    assert cache.lookup(KEY, now=125.0) is None
    assert len(cache) == 0


def test_a_lookup_expires_only_what_the_window_has_passed() -> None:
    cache = ReplyCache(window=10)
    old, young = request_key("127.0.0.1", 1, HEADER), request_key("127.0.0.1", 2, HEADER)
    cache.begin(old, now=100.0)
    cache.finish(old, b"old")
    cache.begin(young, now=105.0)
    assert cache.lookup(young, now=110.0) == IN_PROGRESS
    assert len(cache) == 1
    assert cache.lookup(old, now=110.0) is None
    cache.finish(young, b"young")
    assert cache.lookup(young, now=114.9) == b"young"
    assert cache.lookup(young, now=115.0) is None


def test_no_reply_forgets_so_a_retry_is_processed() -> None:
    """R-71: a request that got no answer (Redis down) is processed again when retried."""
    cache = ReplyCache(window=30)
    cache.begin(KEY, now=1.0)
    cache.finish(KEY, None)
    assert cache.lookup(KEY, now=1.5) is None


def test_a_retrys_reply_stays_its_whole_window() -> None:
    """The unanswered first attempt's expiry must not remove the retry's answer: a resend of the
    retry within its own window is answered from the cache."""
    cache = ReplyCache(window=30)
    cache.begin(KEY, now=1.0)
    cache.finish(KEY, None)
    cache.begin(KEY, now=20.0)
    cache.finish(KEY, b"reply")
    assert cache.lookup(KEY, now=35.0) == b"reply"  # past the first attempt's expiry (31)
    assert cache.lookup(KEY, now=50.0) is None  # past the retry's (50)
    assert len(cache) == 0


def test_bounded() -> None:
    cache = ReplyCache(window=30, max_entries=100)
    for i in range(1000):
        cache.begin(request_key("127.0.0.1", i, HEADER), now=1.0)
    assert len(cache) == 100
    assert cache.lookup(request_key("127.0.0.1", 999, HEADER), now=1.0) == IN_PROGRESS
    assert cache.lookup(request_key("127.0.0.1", 0, HEADER), now=1.0) is None


def test_key_is_the_rfc5080_tuple() -> None:
    """R-70: source address, source port, code, Identifier and Request Authenticator each tell
    requests apart; the Length octets and anything past the header do not."""
    auth = bytes(range(16))
    base = request_key("10.0.0.1", 1812, bytes([1, 7, 0, 40]) + auth)
    assert request_key("10.0.0.1", 1812, bytes([1, 7, 0, 44]) + auth + b"attrs") == base
    assert request_key("10.0.0.2", 1812, bytes([1, 7, 0, 40]) + auth) != base
    assert request_key("10.0.0.1", 1813, bytes([1, 7, 0, 40]) + auth) != base
    assert request_key("10.0.0.1", 1812, bytes([4, 7, 0, 40]) + auth) != base
    assert request_key("10.0.0.1", 1812, bytes([1, 8, 0, 40]) + auth) != base
    assert request_key("10.0.0.1", 1812, bytes([1, 7, 0, 40]) + auth[:15] + b"x") != base
    assert request_key("10.0.0.11", 812, bytes([1, 7, 0, 40]) + auth) != base


def test_holds_nothing_the_cyclic_collector_tracks() -> None:
    """A full window of entries must not lengthen garbage-collector pauses (R-70 under load):
    keys, replies and the expiry order are all untracked objects."""
    cache = ReplyCache(window=30)
    for i in range(100):
        key = request_key("127.0.0.1", 40000 + i, HEADER)
        cache.begin(key, now=float(i))
        cache.finish(key, b"reply")
    held = [cache._entries, *cache._entries, *cache._entries.values(), *cache._expiry, *cache._keys]
    assert [o for o in held[1:] if gc.is_tracked(o)] == []
