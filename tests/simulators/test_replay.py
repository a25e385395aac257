"""Trace replay (issue 6): the JSON Lines format is validated with the line and field named; events
go out at t / speed; the shipped traces replay cleanly against the demo data set and quotad counts
the trace's counters, Gigawords included (RFC 2869 §5.1, R-16, R-71)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quotad import demo
from quotad.app import Daemon
from quotad.quota.calendar import day_key
from quotad.quota.model import LineRef
from simulators import trace
from simulators.replay import Target, replay
from simulators.wire import Nas
from tests.conftest import free_port
from tests.integration.daemon_fixture import SECRET, T0, daemon_config, running_daemon

TRACES = Path(trace.__file__).with_name("traces")

TIMED = """\
{"t": 0, "event": "attach", "session": "s-1", "msisdn": "819000000011", "imsi": "440100000000011"}
{"t": 10, "event": "interim", "session": "s-1", "input_octets": 1000, "output_octets": 20000}
{"t": 20, "event": "interim", "session": "s-1", "input_octets": 3000, "output_octets": 90000}
{"t": 30, "event": "stop", "session": "s-1", "input_octets": 5000, "output_octets": 120000}
"""


COA_PORT = free_port(socket.SOCK_DGRAM)


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(daemon_config(redis_url, coa_port=COA_PORT)) as d:
        assert d.store is not None
        await demo.provision(d.store, T0)
        yield d


def target(d: Daemon) -> Target:
    return Target(auth_port=d.auth_port, acct_port=d.acct_port, nas=Nas(secret=SECRET), timeout=1.0, retries=1,
                  coa_port=COA_PORT)


async def usage(d: Daemon, contract: str, msisdn: str) -> tuple[int, int]:
    assert d.store is not None
    rows = await d.store.views.line_usage(LineRef(contract, msisdn), [day_key(T0)])
    return rows[0].high, rows[0].low


async def test_scaled_timing_sends_each_event_at_t_over_speed(daemon: Daemon) -> None:
    """speed 20: events at 0, 10, 20, 30 s go out at 0, 0.5, 1.0, 1.5 s, in order, never early and
    at most 250 ms late (a loaded CI machine may not run the process at once); quotad counts the
    Stop's cumulative counters once: 125,000 octets at high speed."""
    result = await replay(trace.parse(TIMED), target(daemon), speed=20)
    assert [s.due for s in result.sent] == [0.0, 0.5, 1.0, 1.5]
    for s in result.sent:
        assert -0.002 <= s.sent - s.due <= 0.25, s
    assert 1.5 <= result.wall < 2.0
    assert [s.outcome for s in result.sent] == ["accept", "response", "response", "response"]
    assert await usage(daemon, "demo-light", "819000000011") == (125_000, 0)


async def test_shipped_demo_day_trace_replays_cleanly(daemon: Daemon) -> None:
    """simulators/traces/demo_day.jsonl on the demo data set: 5 accepts (4 attaches, 1
    re-authorization), 10 accounting responses, nothing rejected or lost."""
    events = trace.load(TRACES / "demo_day.jsonl")
    result = await replay(events, target(daemon), speed=4000)
    assert result.outcomes() == {"accept": 5, "response": 10}
    assert await usage(daemon, "demo-family", "819000000001") == (1_502_201 + 15_000_021, 0)


async def test_gigawords_trace_is_counted_past_4_gib(daemon: Daemon) -> None:
    """simulators/traces/gigawords.jsonl: counters past 2^32 each way; quotad's high- and low-speed
    usage of the line add up to 4.3 GB + 9 GB exactly (the pool ran dry on the way: overrun)."""
    result = await replay(trace.load(TRACES / "gigawords.jsonl"), target(daemon), speed=1000)
    assert result.outcomes() == {"accept": 1, "response": 3}
    high, low = await usage(daemon, "demo-family", "819000000003")
    assert high + low == 4_300_000_000 + 9_000_000_000
    assert daemon.store is not None
    view = await daemon.store.views.contract_view("demo-family", T0)
    assert next(ln.overrun for ln in view.lines if ln.msisdn == "819000000003") > 0
    # while up, the session went to `low` (pool dry), then `restricted` (over 366 MB
    # at low speed in 3 days), each by a CoA the replay ACKed
    assert result.dynauth == [("coa", "big-0001", True), ("coa", "big-0001", True)]


def test_events_sorted_by_time_and_comments_skipped() -> None:
    events = trace.parse('# c\n\n{"t": 5, "event": "stop", "session": "a"}\n'
                         '{"t": 1, "event": "attach", "session": "a", "msisdn": "8190"}\n')
    assert [(e.t, e.event, e.line) for e in events] == [(1.0, "attach", 4), (5.0, "stop", 3)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"line 1: not JSON"),
        ('{"t": 1, "event": "attach"}', r"line 1: session: missing"),
        ('{"t": 1, "event": "dance", "session": "a"}', r"line 1: event: must be one of attach"),
        ('{"t": -1, "event": "attach", "session": "a", "msisdn": "1"}', r"line 1: t: must be"),
        ('{"t": 1, "event": "stop", "session": "a"}', r"line 1: session 'a' has no attach"),
        ('{"t": 0, "event": "attach", "session": "a", "msisdn": "1", "octets": 5}', r"unknown field 'octets'"),
        ('{"t": 0, "event": "attach", "session": "a", "msisdn": "1", "input_octets": -5}', r"input_octets"),
    ],
)
def test_bad_trace_lines_name_line_and_field(text: str, message: str) -> None:
    with pytest.raises(trace.TraceError, match=message):
        trace.parse(text)
