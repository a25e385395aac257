"""The speed timer's pure parts: which key names a line's live set, when the next check is due."""

from __future__ import annotations

import datetime as dt

import redis.asyncio as aioredis

from quotad import app
from quotad.aaa.sessions import SessionControl
from quotad.config import Config
from quotad.quota import keys as k
from quotad.quota.model import LineRef
from quotad.quota.store import QuotaStore
from quotad.speedtimer import LIVE_MATCH, WAKE_AFTER, SpeedTimer, line_of

JST = dt.timezone(dt.timedelta(hours=9))


def test_line_of_a_live_set_key() -> None:
    assert line_of(k.ContractKeys("fam-001").live("819012345678")) == LineRef("fam-001", "819012345678")
    assert line_of(b"q:{c:fam-001}:live:819012345678") == LineRef("fam-001", "819012345678")
    # an id may hold ':' and even 'live': the contract ends at the first '}'
    assert line_of("q:{c:a:live:b}:live:8190") == LineRef("a:live:b", "8190")
    assert line_of("q:{c:c1}:live:8190:x") == LineRef("c1", "8190:x")


def test_line_of_other_keys_is_none() -> None:
    for key in ("q:{c:c1}:l:8190", "q:{c:c1}:s:8190:live:1", "q:{c:c1}:live:", "q:{c:}:live:8190",
                "q:{stats}:sampler", "q:{c:c1}x:live:8190", "x:{c:c1}:live:8190"):
        assert line_of(key) is None, key
    assert LIVE_MATCH == "q:{c:*}:live:*"


def timer(poll: float) -> SpeedTimer:
    config = Config()
    store = QuotaStore(aioredis.Redis(), app.quota_settings_from(config), app.catalog_from(config))
    sessions = SessionControl(store, app.catalog_from(config), {}, None, lambda: 0.0)  # type: ignore[arg-type]
    return SpeedTimer(store, sessions, lambda: 0.0, poll=poll)


def test_the_next_check_is_at_the_japan_midnight_or_after_poll() -> None:
    """23:59:50 Japan time (14:59:50 UTC): the timer wakes just after midnight, Japan time, not UTC."""
    before = dt.datetime(2026, 11, 30, 23, 59, 50, tzinfo=JST).timestamp()
    assert timer(poll=15).delay(before) == 10 + WAKE_AFTER
    assert timer(poll=5).delay(before) == 5
    noon = dt.datetime(2026, 11, 30, 12, tzinfo=JST).timestamp()
    assert timer(poll=15).delay(noon) == 15
