"""Every octet counted once, on the right line and day (R-16, R-17, R-22, R-23, R-71): the store's
accounting edge cases, on a single Redis (redis-py and the pipelining client) and on Cluster.

Each test reproduces a case where usage was lost, misplaced or over-charged; the wire-level cases
(session identity, gateways, Accounting-On/Off) are in test_session_identity.py."""

from __future__ import annotations

import pytest

from quotad.policy.plans import MB
from quotad.quota import keys as k
from quotad.quota.model import (
    ACCT_INTERIM,
    ACCT_START,
    ACCT_STOP,
    AccountingReport,
    AccountResult,
    AttachRequest,
    LineRef,
    ReportOutcome,
)
from quotad.quota.store import QuotaStore
from tests.integration.storekit import SLICE, StoreFactory, at, new_line

T = at(2026, 11, 10, 12)
DAY = 86400


async def send(store: QuotaStore, ref: LineRef, sid: str, status: int, octets: int, now: float, *,
               exempt: int = 0, event: float | None = None, gateway: str = "gw-a") -> AccountResult:
    return await store.account(AccountingReport(ref, sid, status, octets, "192.0.2.1", now, exempt_octets=exempt,
                                                event_time=event, gateway=gateway))


async def usage(store: QuotaStore, ref: LineRef, day: str) -> tuple[int, int]:
    (u,) = await store.views.line_usage(ref, [day])
    return u.high, u.low


async def light_line(store: QuotaStore) -> LineRef:
    await store.provisioning.create_contract("C1", "light_start", __import__("datetime").date(2026, 11, 1), T)
    return await new_line(store, "C1", now=T)


async def test_zero_rated_growing_faster_than_the_total_is_charged_from_cumulative_figures(
    store: QuotaStore,
) -> None:
    """Interim (10 MB, 12 MB zero-rated) is free; Interim (30 MB, 20 MB) owes 30 - 20 = 10 MB in
    all, not 20 - 10 + 2 (a per-report clamp lost the 2 MB the exempt counter ran ahead)."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    first = await send(store, ref, "s1", ACCT_INTERIM, 10 * MB, T + 60, exempt=12 * MB)
    second = await send(store, ref, "s1", ACCT_INTERIM, 30 * MB, T + 120, exempt=20 * MB)
    assert (first.debited, second.debited) == (0, 10 * MB)
    # The chargeable figure fell (exempt ran ahead again): nothing more until it passes 10 MB.
    third = await send(store, ref, "s1", ACCT_INTERIM, 40 * MB, T + 180, exempt=35 * MB)
    fourth = await send(store, ref, "s1", ACCT_INTERIM, 60 * MB, T + 240, exempt=35 * MB)
    assert (third.debited, fourth.debited) == (0, 15 * MB)
    assert await usage(store, ref, "20261110") == (25 * MB, 0)


async def test_an_absurd_report_is_refused_before_any_write(store: QuotaStore) -> None:
    """Acct-Input-Gigawords = 2^31 on a family_share line: nothing drawn from the pool, nothing
    written; the sibling line keeps its data and the session its counters; the next sane report
    counts from where the session was."""
    import datetime as dt

    await store.provisioning.create_contract("F1", "family_share", dt.date(2026, 11, 1), T)
    a, b = await new_line(store, "F1", now=T), await new_line(store, "F1", now=T)
    assert (await store.attach(AttachRequest(a, None, "sa", "192.0.2.1", T))).granted == SLICE
    await send(store, a, "sa", ACCT_START, 0, T)
    await send(store, a, "sa", ACCT_INTERIM, 5 * MB, T + 60)
    before = await store.views.contract_view("F1", T + 60)
    absurd = (1 << 31) << 32
    res = await send(store, a, "sa", ACCT_INTERIM, absurd, T + 120)
    assert res.outcome is ReportOutcome.IMPLAUSIBLE and (res.added, res.debited, res.granted) == (0, 0, 0)
    # Representable, but more than 10 Gbit/s could carry in the 120 s since the last counted
    # report (150 GB) and the 50 GB of slack.
    res = await send(store, a, "sa", ACCT_INTERIM, 5 * MB + 201_000_000_000, T + 180)
    assert res.outcome is ReportOutcome.IMPLAUSIBLE and res.debited == 0
    after = await store.views.contract_view("F1", T + 180)
    assert after == before
    ok = await send(store, a, "sa", ACCT_INTERIM, 8 * MB, T + 240)
    assert (ok.outcome, ok.added, ok.debited) == (ReportOutcome.COUNTED, 3 * MB, 3 * MB)
    assert (await store.attach(AttachRequest(b, None, "sb", "192.0.2.1", T + 300))).granted == SLICE


async def test_a_start_after_a_stop_with_a_reused_id_is_a_new_session(store: QuotaStore) -> None:
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_STOP, 50 * MB, T + 60)
    assert (await send(store, ref, "s1", ACCT_STOP, 50 * MB, T + 61)).added == 0  # a resent Stop
    restart = await send(store, ref, "s1", ACCT_START, 0, T + 120)
    interim = await send(store, ref, "s1", ACCT_INTERIM, 20 * MB, T + 180)
    assert (restart.outcome, interim.added) == (ReportOutcome.COUNTED, 20 * MB)
    assert await usage(store, ref, "20261110") == (70 * MB, 0)
    assert [s.session_id for s in await store.live_sessions(ref)] == ["s1"]


async def test_reports_of_an_ended_session_count_nothing(store: QuotaStore) -> None:
    """After its Stop, a session's late Interim (sent before the Stop, delivered after) and a
    resent old Start (dated before the Stop) count nothing and do not bring it back to life."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_STOP, 50 * MB, T + 60)
    late = await send(store, ref, "s1", ACCT_INTERIM, 40 * MB, T + 70, event=T + 30)
    old_start = await send(store, ref, "s1", ACCT_START, 0, T + 80, event=T)
    assert (late.outcome, late.added, old_start.outcome) == (ReportOutcome.ENDED, 0, ReportOutcome.ENDED)
    assert await store.live_sessions(ref) == []
    assert await usage(store, ref, "20261110") == (50 * MB, 0)


async def test_a_report_older_than_the_kept_records_is_refused_not_counted_again(store: QuotaStore) -> None:
    """A Stop resent three days later (Acct-Delay-Time says so) finds no session record: it is
    refused as too old instead of being counted again in full."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_STOP, 50 * MB, T + 60)
    later = T + store.settings.stopped_ttl_seconds + 3600
    await store.client.delete(k.ContractKeys("C1").session(ref.msisdn, "s1"))  # as its TTL would
    res = await send(store, ref, "s1", ACCT_STOP, 50 * MB, later, event=T + 60)
    assert (res.outcome, res.added) == (ReportOutcome.TOO_OLD, 0)
    assert await usage(store, ref, "20261110") == (50 * MB, 0)


async def test_counters_that_go_backwards_start_a_new_count(store: QuotaStore) -> None:
    """The gateway restarted and kept the session's id: its counters start again from zero, and
    what they count is new usage (it was lost until they passed the old maximum)."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_INTERIM, 50 * MB, T + 60)
    res = await send(store, ref, "s1", ACCT_INTERIM, 5 * MB, T + 120)
    assert (res.outcome, res.added) == (ReportOutcome.COUNTED, 5 * MB)
    assert (await send(store, ref, "s1", ACCT_INTERIM, 7 * MB, T + 180)).added == 2 * MB
    assert await usage(store, ref, "20261110") == (57 * MB, 0)


async def test_an_out_of_order_report_counts_nothing(store: QuotaStore) -> None:
    """An Interim delivered after a newer one (its event time is older) is not a counter reset."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_INTERIM, 50 * MB, T + 120)
    res = await send(store, ref, "s1", ACCT_INTERIM, 30 * MB, T + 130, event=T + 60)
    assert (res.outcome, res.added) == (ReportOutcome.STALE, 0)
    assert (await send(store, ref, "s1", ACCT_INTERIM, 60 * MB, T + 180)).added == 10 * MB
    assert await usage(store, ref, "20261110") == (60 * MB, 0)


async def test_two_reports_of_one_second_delivered_out_of_order_count_once(store: QuotaStore) -> None:
    """Two Interims with the same Event-Timestamp (whole seconds), the later one delivered first (a
    Redis failover held the other in a retry): lower counters at the same time are the earlier
    report, not a counter restart, so nothing is counted again."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_INTERIM, 50 * MB, T + 61, event=T + 60)
    res = await send(store, ref, "s1", ACCT_INTERIM, 40 * MB, T + 62, event=T + 60)
    assert (res.outcome, res.added) == (ReportOutcome.STALE, 0)
    assert (await send(store, ref, "s1", ACCT_INTERIM, 55 * MB, T + 120)).added == 5 * MB
    assert await usage(store, ref, "20261110") == (55 * MB, 0)


async def test_usage_is_dated_by_the_event_not_the_arrival(store: QuotaStore) -> None:
    """A report buffered two days (Acct-Delay-Time / Event-Timestamp) is booked on its own Japan
    day: the day's usage and the 3-day window (R-22) take it there."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T - 2 * DAY, event=T - 2 * DAY)
    res = await send(store, ref, "s1", ACCT_INTERIM, 30 * MB, T, event=T - 2 * DAY + 600)
    assert res.added == 30 * MB
    assert await usage(store, ref, "20261108") == (30 * MB, 0)
    assert await usage(store, ref, "20261110") == (0, 0)


async def test_a_gateway_restart_ends_its_sessions_and_only_its_own(store: QuotaStore) -> None:
    """Accounting-On/Off: the gateway's sessions end as Stops would (their data stays used, their
    addresses go back to the pool), once however often it is said; other gateways' stay live."""
    ref = await light_line(store)
    for sid, gateway in (("a1", "gw-a"), ("a2", "gw-a"), ("b1", "gw-b")):
        res = await store.attach(AttachRequest(ref, None, sid, "192.0.2.1", T, gateway=gateway))
        assert res.ok
        await send(store, ref, sid, ACCT_START, 0, T + 1, gateway=gateway)
    await send(store, ref, "a1", ACCT_INTERIM, 4 * MB, T + 60)
    held = (await store.line_facts(ref, T + 60)).held
    assert await store.end_gateway_sessions("gw-a", T + 120) == 2
    assert await store.end_gateway_sessions("gw-a", T + 121) == 0
    assert [s.session_id for s in await store.live_sessions(ref)] == ["b1"]
    assert (await store.line_facts(ref, T + 121)).held == held
    pool = k.IpPoolKeys("100.64.0.0/16").all()
    owners = await store.client.hgetall(pool[2])
    assert sorted(o.decode().split("\t")[2] for o in owners) == ["b1"]
    # A late Interim of an ended session counts nothing, nor does its Start resent (found by the
    # invariant test: the resend was taken for a new session under the same id).
    late = await send(store, ref, "a1", ACCT_INTERIM, 9 * MB, T + 130, event=T + 90)
    resent = await send(store, ref, "a2", ACCT_START, 0, T + 140, event=T + 1)
    assert (late.outcome, resent.outcome) == (ReportOutcome.ENDED, ReportOutcome.ENDED)
    assert [s.session_id for s in await store.live_sessions(ref)] == ["b1"]


async def test_ending_one_session(store: QuotaStore) -> None:
    """What a CoA NAK with Error-Cause 503 (session context not found) leads to: the session ends."""
    ref = await light_line(store)
    await store.attach(AttachRequest(ref, None, "s1", "192.0.2.1", T, gateway="gw-a"))
    assert await store.end_session(ref, "s1", T + 10) is True
    assert await store.end_session(ref, "s1", T + 11) is False
    assert await store.live_sessions(ref) == []


@pytest.mark.parametrize("before_start", [True, False])
async def test_a_line_attaches_from_its_contract_start_day(store: QuotaStore, before_start: bool) -> None:
    import datetime as dt

    await store.provisioning.create_contract("C2", "light_start", dt.date(2026, 11, 11), T)
    ref = await new_line(store, "C2", now=T)
    now = at(2026, 11, 10, 23, 59) if before_start else at(2026, 11, 11, 0, 0)
    res = await store.attach(AttachRequest(ref, None, "s1", "192.0.2.1", now))
    assert (res.ok, res.reason) == ((False, "not_started") if before_start else (True, None))


async def test_a_request_naming_no_session_is_the_slots_latest_until_it_reports(make_store: StoreFactory) -> None:
    """Access-Requests naming no session (no Acct-Session-Id, no Class) from one gateway for one SIM
    and APN: the same session, with the same address, while it has had no accounting report (a
    gateway asking again must not take an address per attempt); a new session, with its own id and
    address, once it has. Two processes agree (the second one's guess is corrected)."""
    a, b = await make_store(), await make_store()
    ref = await light_line(a)

    async def attach(store: QuotaStore, now: float) -> tuple[str, str | None]:
        res = await store.attach(AttachRequest(ref, None, f"a{now:.0f}", "192.0.2.1", now, gateway="gw-a",
                                               slot="slot-1"))
        assert res.ok
        return res.session_id, res.framed_ip

    first = await attach(a, T)
    assert await attach(a, T + 1) == first and await attach(b, T + 2) == first
    await send(a, ref, first[0], ACCT_START, 0, T + 3)
    second = await attach(b, T + 4)
    assert second[0] == f"a{T + 4:.0f}" and second[1] != first[1]
    assert await attach(a, T + 5) == second  # a's guess (the first) is corrected
    live = sorted(s.session_id for s in await a.live_sessions(ref))
    assert live == sorted([first[0], second[0]])


async def test_a_stop_resent_from_an_earlier_session_under_the_same_id_leaves_the_live_one(
    store: QuotaStore,
) -> None:
    """The gateway reuses an id after a Stop; the old Stop, resent late (dated before the new
    session's Start), must neither end the new session nor count."""
    ref = await light_line(store)
    await send(store, ref, "s1", ACCT_START, 0, T)
    await send(store, ref, "s1", ACCT_STOP, 50 * MB, T + 60)
    await send(store, ref, "s1", ACCT_START, 0, T + 120)
    await send(store, ref, "s1", ACCT_INTERIM, 10 * MB, T + 180)
    old = await send(store, ref, "s1", ACCT_STOP, 50 * MB, T + 200, event=T + 60)
    assert (old.outcome, old.added) == (ReportOutcome.STALE, 0)
    assert [s.session_id for s in await store.live_sessions(ref)] == ["s1"]
    assert (await send(store, ref, "s1", ACCT_INTERIM, 15 * MB, T + 240)).added == 5 * MB
    assert await usage(store, ref, "20261110") == (65 * MB, 0)
