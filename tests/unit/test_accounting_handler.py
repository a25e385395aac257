"""aaa.accounting.AccountingHandler with an in-memory store: which session and line a report is
counted against, what is acknowledged without counting, Accounting-On/Off, and a Redis failure."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from quotad import app, metrics
from quotad.aaa import classattr
from quotad.aaa.accounting import STATUS_INTERIM, STATUS_ON, STATUS_START, AccountingHandler
from quotad.aaa.speed import Push, SpeedChanges
from quotad.config import Config
from quotad.quota.model import LineRef, ReportOutcome
from quotad.radius import packet as rp
from quotad.radius.clients import Client
from tests.unit.fakestore import FakeStore

SECRET = b"testing123"
CLIENT = Client("gw", SECRET)
LINE = LineRef("c1", "819000000001")
NOW = 1_790_000_000.0


def report(status: int, octets: int = 0, klass: bytes | None = None, asid: bytes = b"s-1",
           msisdn: str = LINE.msisdn, extra: bytes = b"") -> tuple[rp.Packet, bytes]:
    attrs = rp.attr_int(rp.ACCT_STATUS_TYPE, status) + rp.attr(rp.NAS_IP_ADDRESS, bytes([10, 0, 0, 1]))
    if asid:
        attrs += rp.attr(rp.ACCT_SESSION_ID, asid)
    attrs += rp.attr(rp.CALLING_STATION_ID, msisdn.encode()) + rp.attr_int(rp.ACCT_INPUT_OCTETS, octets)
    if klass is not None:
        attrs += rp.attr(rp.CLASS, klass)
    datagram, auth = rp.encode_request(rp.ACCOUNTING_REQUEST, 9, SECRET, attrs + extra, message_authenticator=False)
    return rp.decode(datagram), auth


def handler(store: FakeStore) -> tuple[AccountingHandler, list[tuple[LineRef, Push]]]:
    pushed: list[tuple[LineRef, Push]] = []
    speeds = SpeedChanges(store, app.catalog_from(Config()), lambda ref, push: pushed.append((ref, push)))
    return AccountingHandler(store, speeds, lambda: NOW), pushed


async def acknowledged(h: AccountingHandler, pkt: rp.Packet, auth: bytes) -> None:
    raw = await h.handle(pkt, CLIENT)
    assert raw is not None
    reply = rp.decode(raw)
    assert reply.code == rp.ACCOUNTING_RESPONSE and reply.identifier == pkt.identifier
    assert rp.verify_response_authenticator(reply, auth, SECRET)


def counter(metric: object, *labels: str) -> float:
    """A counter's value as a scrape reads it."""
    names = dict(zip(metric._labelnames, labels, strict=True))  # type: ignore[attr-defined]
    return metrics.REGISTRY.get_sample_value(f"{metric._name}_total", names) or 0.0  # type: ignore[attr-defined]


async def test_a_report_with_class_counts_against_the_session_class_names() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE})
    h, _ = handler(store)
    klass = classattr.encode("c1", LINE.msisdn, "10.0.0.1/attach-1")
    await acknowledged(h, *report(STATUS_INTERIM, 5000, klass=klass))
    [r] = store.reports
    assert (r.ref, r.session_id, r.status, r.octets, r.gateway, r.acct_session_id, r.now) == (
        LINE, "10.0.0.1/attach-1", STATUS_INTERIM, 5000, "10.0.0.1", "s-1", NOW)
    assert store.calls == ["account"]  # the line came from Class: no lookup


async def test_without_class_the_line_is_looked_up_and_the_session_is_the_gateways() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE})
    h, _ = handler(store)
    await acknowledged(h, *report(STATUS_START))
    [r] = store.reports
    assert (r.ref, r.session_id, r.acct_session_id) == (LINE, "10.0.0.1/s-1", "s-1")
    assert store.calls == ["find_line", "account"]


@pytest.mark.parametrize(("msisdn", "asid", "calls"), [("0", b"s-1", ["find_line"]), (LINE.msisdn, b"", ["find_line"])])
async def test_a_report_with_nothing_to_count_against_is_acknowledged_and_counted(
        msisdn: str, asid: bytes, calls: list[str]) -> None:
    """An unknown line, or no session id at all: a resend would fare the same."""
    store = FakeStore(lines={LINE.msisdn: LINE})
    h, _ = handler(store)
    before = counter(metrics.RADIUS_REQUESTS, "accounting", "unknown_line")
    await acknowledged(h, *report(STATUS_INTERIM, 10, msisdn=msisdn, asid=asid))
    assert (store.calls, store.reports) == (calls, [])
    assert counter(metrics.RADIUS_REQUESTS, "accounting", "unknown_line") == before + 1


async def test_a_line_the_store_does_not_have_is_unknown() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE})
    h, _ = handler(store)
    klass = classattr.encode("gone", "819000000009", "10.0.0.1/x")
    before = counter(metrics.RADIUS_REQUESTS, "accounting", "unknown_line")
    await acknowledged(h, *report(STATUS_INTERIM, 10, klass=klass))
    assert counter(metrics.RADIUS_REQUESTS, "accounting", "unknown_line") == before + 1


async def test_a_report_not_counted_is_acknowledged_counted_by_reason_and_decides_nothing() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE}, outcome=ReportOutcome.STALE, speed="low")
    h, pushed = handler(store)
    before = counter(metrics.ACCOUNTING_NOT_COUNTED, "stale")
    await acknowledged(h, *report(STATUS_INTERIM, 10))
    assert counter(metrics.ACCOUNTING_NOT_COUNTED, "stale") == before + 1
    assert (store.calls, store.speed, pushed) == (["find_line", "account"], "low", [])


async def test_a_counted_report_that_changes_the_speed_pushes_it_to_every_session() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE}, speed="low")  # the facts allow high again
    h, pushed = handler(store)
    await acknowledged(h, *report(STATUS_INTERIM, 10))
    assert (store.speed, pushed) == ("high", [(LINE, Push("high", with_grant=True, told=""))])


async def test_accounting_on_ends_the_gateways_sessions_and_counts_nothing() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE}, gateway_sessions={"10.0.0.1": 3})
    h, _ = handler(store)
    before = counter(metrics.SESSIONS_ENDED, "gateway_restart")
    await acknowledged(h, *report(STATUS_ON, asid=b""))
    assert (store.calls, store.reports) == (["end_gateway_sessions"], [])
    assert counter(metrics.SESSIONS_ENDED, "gateway_restart") == before + 3


async def test_the_event_timestamp_dates_the_report() -> None:
    store = FakeStore(lines={LINE.msisdn: LINE})
    h, _ = handler(store)
    await acknowledged(h, *report(STATUS_INTERIM, extra=rp.attr_int(rp.EVENT_TIMESTAMP, int(NOW) - 60)))
    await acknowledged(h, *report(STATUS_INTERIM, extra=rp.attr_int(rp.ACCT_DELAY_TIME, 30)))
    await acknowledged(h, *report(STATUS_INTERIM, extra=rp.attr_int(rp.EVENT_TIMESTAMP, int(NOW) + 3600)))
    assert [r.event_time for r in store.reports] == [NOW - 60, NOW - 30, None]


async def test_a_redis_failure_sends_no_answer() -> None:
    """R-71: the response only once the report is stored; else the gateway retries."""
    store = FakeStore(lines={LINE.msisdn: LINE}, fail=RedisConnectionError("down"))
    assert await handler(store)[0].handle(*report(STATUS_INTERIM, 10)[:1], CLIENT) is None
