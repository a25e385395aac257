"""QuotaStore against a real Redis: SPEC R-10 … R-17, R-22, R-71, R-73, with exact byte counts."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import random
from collections.abc import Awaitable

import pytest
import redis as sync_redis

from quotad.policy.decide import decide_speed
from quotad.policy.plans import GB, MB
from quotad.quota import keys as k
from quotad.quota.errors import Conflict, LimitExceeded, NotFound, QuotaError
from quotad.quota.model import (
    ACCT_INTERIM,
    ACCT_ON,
    ACCT_START,
    ACCT_STOP,
    NOT_READ,
    AccountingReport,
    AccountResult,
    AttachRequest,
    AttachResult,
    LineRef,
    QuotaSettings,
)
from quotad.quota.store import QuotaStore
from tests.integration.storekit import SLICE, StoreFactory, at, attach, catalog, new_line, report
from tests.redis_client import make_client

# -- stage 1 smoke ---------------------------------------------------------------------------------


async def test_smoke_create_add_find_attach_account_set_speed(store: QuotaStore) -> None:
    now = at(2025, 4, 15, 12)
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 15), now)
    ref = await store.provisioning.add_line("C1", "09011112222", "8981000000000000001", "440101234567890", now=now)
    assert await store.find_line("440101234567890", None) == ref
    assert await store.find_line(None, "09011112222") == ref
    res = await attach(store, ref, "s1", now, imsi="440101234567890")
    assert res.ok and res.granted == SLICE and res.framed_ip == "100.64.0.1"
    # Holding data with the coupon switch on, the line is at high speed whatever its pool: the
    # request path does not read it (model.NOT_READ); line_facts does.
    assert res.facts is not None and res.facts.held == SLICE and res.facts.pool == NOT_READ
    assert (await store.line_facts(ref, now)).pool == 533 * MB - SLICE
    acc = await report(store, ref, "s1", ACCT_INTERIM, 25 * MB, now + 60)
    assert (acc.added, acc.debited, acc.granted, acc.overrun_added) == (25 * MB, 25 * MB, 2 * SLICE, 0)
    assert acc.facts.held == 5 * MB and (acc.facts.pool, acc.facts.low_3day) == (NOT_READ, NOT_READ)
    assert (await store.line_facts(ref, now + 60)).pool == 533 * MB - 3 * SLICE
    assert await store.set_speed(ref, "", "high") is True
    assert await store.set_speed(ref, "", "high") is False
    assert (await store.line_facts(ref, now)).speed == "high"
    assert await store.ping() is True


# -- R-10 bundle -----------------------------------------------------------------------------------


async def test_r10_prorated_on_the_15th_of_a_30_day_month(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 15), at(2025, 4, 15, 9))
    view = await store.views.contract_view("C1", at(2025, 4, 15, 9))
    assert [(b.kind, b.size, b.left, b.expires_at) for b in view.buckets] == [
        ("bundle", 533_000_000, 533_000_000, at(2025, 6, 1))
    ]
    assert view.pool == 533_000_000 and view.plan == "light_start" and view.start_date == "20250415"


async def test_r10_bundle_granted_lazily_on_first_touch_in_new_month(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 15), at(2025, 4, 15, 9))
    ref = await new_line(store, "C1", 1)
    just_before = at(2025, 5, 1) - 1
    assert (await store.line_facts(ref, just_before)).pool == 533 * MB
    # The first script to touch the contract in May (here an accounting report) grants May's bundle.
    acc = await report(store, ref, "s1", ACCT_INTERIM, 0, at(2025, 5, 1))
    assert acc.facts.pool == 533 * MB + 1 * GB
    view = await store.views.contract_view("C1", at(2025, 5, 20))
    assert [(b.size, b.expires_at) for b in view.buckets] == [(533 * MB, at(2025, 6, 1)), (GB, at(2025, 7, 1))]


async def test_r10_months_without_touch_still_get_the_valid_bundles(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 15), at(2025, 4, 15, 9))
    # Untouched through May: April's bundle has expired, May's (to end of June) and June's remain.
    view = await store.views.contract_view("C1", at(2025, 6, 10))
    assert [(b.size, b.left, b.expires_at) for b in view.buckets] == [
        (GB, GB, at(2025, 7, 1)), (GB, GB, at(2025, 8, 1))
    ]
    assert view.pool == 2 * GB


async def test_r10_plan_without_bundle(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "minimum_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    assert (await store.views.contract_view("C1", at(2025, 7, 1))).pool == 0


async def test_r10_contract_starting_later_gets_nothing_before(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 5, 31), at(2025, 4, 20))
    assert (await store.views.contract_view("C1", at(2025, 4, 30))).pool == 0
    # 31 May: 1 of 31 days → 32 MB.
    assert (await store.views.contract_view("C1", at(2025, 5, 31))).pool == 32 * MB


async def test_r14_next_expiry_hint_follows_the_buckets(store: QuotaStore) -> None:
    """The contract's next_exp field lets every request skip the search for expired buckets
    until the earliest expiry; a contract written without it gets it at its next touch."""
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 15), at(2025, 4, 15, 9))
    ck = k.ContractKeys("C1")
    ref = await new_line(store, "C1", 1)

    async def hint() -> str:
        return (await store.client.hget(ck.contract, "next_exp")).decode()

    assert float(await hint()) == at(2025, 6, 1)  # April's pro-rated bundle
    coupon = await store.provisioning.charge("C1", 1, "op", at(2025, 4, 20))
    assert float(await hint()) == at(2025, 6, 1)  # the coupon expires later (end of July)
    # May's bundle (to end of June) does not move the earliest; at 1 June April's expires.
    assert (await store.line_facts(ref, at(2025, 5, 31))).pool == 533 * MB + GB + 100 * MB
    assert (await store.line_facts(ref, at(2025, 6, 1) - 0.001)).pool == 533 * MB + GB + 100 * MB
    # 1 June: April's bundle expires and June's is granted (to end of July) in the same touch.
    assert (await store.line_facts(ref, at(2025, 6, 1))).pool == GB + GB + 100 * MB
    assert float(await hint()) == at(2025, 7, 1)
    # A contract stored before the hint existed: the next touch looks for expired buckets itself.
    await store.client.hdel(ck.contract, "next_exp")
    assert (await store.line_facts(ref, at(2025, 7, 1))).pool == GB + GB + 100 * MB  # May's bundle gone
    view = await store.views.contract_view("C1", at(2025, 7, 1))
    assert sorted((b.kind, b.expires_at) for b in view.buckets) == [
        ("bundle", at(2025, 8, 1)), ("bundle", at(2025, 9, 1)), ("coupon", at(2025, 8, 1))]
    assert coupon.id in {b.id for b in view.buckets}
    assert float(await hint()) == at(2025, 8, 1)


async def test_create_contract_refusals(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    with pytest.raises(Conflict):
        await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    with pytest.raises(NotFound) as err:
        await store.provisioning.create_contract("C2", "gold", dt.date(2025, 4, 1), at(2025, 4, 1))
    assert err.value.field == "plan"
    with pytest.raises(ValueError):
        await store.provisioning.create_contract("C{3}", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))


# -- R-11 charges ----------------------------------------------------------------------------------


async def test_r11_coupon_units_and_expiry(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "minimum_start", dt.date(2025, 3, 1), at(2025, 3, 1))
    bucket = await store.provisioning.charge("C1", 3, "op:alice", at(2025, 3, 10, 12))
    assert (bucket.kind, bucket.size, bucket.left) == ("coupon", 300 * MB, 300 * MB)
    assert bucket.expires_at == at(2025, 7, 1)  # bought in March: usable to the end of June
    assert (await store.views.contract_view("C1", at(2025, 6, 30, 23, 59))).pool == 300 * MB
    assert (await store.views.contract_view("C1", at(2025, 7, 1))).pool == 0


async def test_r11_31st_unit_refused_whole(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "minimum_start", dt.date(2025, 3, 1), at(2025, 3, 1))
    await store.provisioning.charge("C1", 25, "op", at(2025, 3, 2))
    with pytest.raises(LimitExceeded) as err:
        await store.provisioning.charge("C1", 6, "op", at(2025, 3, 31, 23, 59))
    assert err.value.rule == "R-11" and err.value.field == "units"
    view = await store.views.contract_view("C1", at(2025, 3, 31, 23, 59))
    assert view.pool == 2_500_000_000 and len(view.buckets) == 1
    assert len(await store.views.charges("C1", 0)) == 1
    await store.provisioning.charge("C1", 5, "op", at(2025, 3, 31, 23, 59))  # exactly 30: allowed
    with pytest.raises(LimitExceeded):
        await store.provisioning.charge("C1", 1, "op", at(2025, 3, 31, 23, 59, 59))
    # A new Japan month: 30 more.
    await store.provisioning.charge("C1", 30, "op", at(2025, 4, 1))
    assert (await store.views.contract_view("C1", at(2025, 4, 1))).pool == 6 * GB


async def test_r11_charge_history(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 1, 1), at(2025, 1, 1))
    b1 = await store.provisioning.charge("C1", 1, "customer", at(2025, 1, 5))
    b2 = await store.provisioning.charge("C1", 2, "op:bob", at(2025, 3, 5))
    history = await store.views.charges("C1", 0)
    assert [(c.at, c.units, c.who, c.bucket_id) for c in history] == [
        (at(2025, 1, 5), 1, "customer", b1.id), (at(2025, 3, 5), 2, "op:bob", b2.id)
    ]
    assert [c.units for c in await store.views.charges("C1", at(2025, 2, 1))] == [2]


async def test_r11_bad_charges(store: QuotaStore) -> None:
    with pytest.raises(NotFound):
        await store.provisioning.charge("nope", 1, "op", at(2025, 1, 1))
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 1, 1), at(2025, 1, 1))
    for units in (0, -1):
        with pytest.raises(QuotaError) as err:
            await store.provisioning.charge("C1", units, "op", at(2025, 1, 1))
        assert err.value.rule == "R-11"


# -- R-12 slices -----------------------------------------------------------------------------------


async def test_r12_slice_spans_buckets_nearest_expiry_first(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))  # 4 MB to end of May
    await store.provisioning.charge("C1", 1, "op", at(2025, 4, 1))  # 100 MB to end of July
    ref = await new_line(store, "C1")
    res = await attach(store, ref, "s1", at(2025, 4, 2))
    assert res.granted == SLICE and res.facts is not None and res.facts.held == SLICE
    view = await store.views.contract_view("C1", at(2025, 4, 2))
    assert [(b.kind, b.left) for b in view.buckets] == [("bundle", 0), ("coupon", 94 * MB)]


async def test_r12_pool_under_a_slice_gives_what_is_left(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    res = await attach(store, ref, "s1", at(2025, 4, 2))
    assert res.granted == 4 * MB and res.facts is not None and res.facts.held == 4 * MB
    assert (await store.line_facts(ref, at(2025, 4, 2))).pool == 0


async def test_r12_no_draw_while_holding_a_slice(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    assert (await attach(store, ref, "s1", at(2025, 4, 2))).granted == SLICE
    assert (await attach(store, ref, "s2", at(2025, 4, 2))).granted == 0  # holds one slice already
    await report(store, ref, "s1", ACCT_INTERIM, 1, at(2025, 4, 2))
    res = await attach(store, ref, "s3", at(2025, 4, 2))  # holds a byte less than a slice
    assert res.granted == SLICE and res.facts is not None and res.facts.held == 2 * SLICE - 1


async def test_r12_usage_past_the_slice_draws_next_slices(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    await attach(store, ref, "s1", at(2025, 4, 2))
    acc = await report(store, ref, "s1", ACCT_INTERIM, 35 * MB + 7, at(2025, 4, 2))
    # held 10 MB; 25 MB + 7 more needed → 3 slices.
    assert (acc.debited, acc.granted, acc.overrun_added) == (35 * MB + 7, 3 * SLICE, 0)
    assert acc.facts.held == 5 * MB - 7 and (await store.line_facts(ref, at(2025, 4, 2))).pool == GB - 4 * SLICE


async def test_r12_top_up_draws_a_slice_only_for_a_high_speed_line_holding_less(store: QuotaStore) -> None:
    """R-12 / R-24: back at high speed (a CoA is about to be sent), a line holding less than a slice
    draws one, as an attach would; not while its speed class is not `high`, its switch is OFF, or it
    holds a slice already; what a dry pool has left when that is less than a slice."""
    now = at(2025, 4, 2)
    await store.provisioning.create_contract("C1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))  # 4 MB to end of May
    await store.provisioning.charge("C1", 1, "op", now)  # + 100 MB
    ref = await new_line(store, "C1")
    assert await store.top_up(ref, now) == (0, await store.line_facts(ref, now))  # no speed decided yet
    await store.set_speed(ref, "", "high")
    granted, facts = await store.top_up(ref, now)
    assert (granted, facts.held, facts.pool, facts.speed) == (SLICE, SLICE, 94 * MB, "high")
    assert (await store.top_up(ref, now))[0] == 0  # holds a slice: nothing more
    await report(store, ref, "s1", ACCT_INTERIM, 1, now)
    granted, facts = await store.top_up(ref, now)  # a byte less than a slice: a whole slice more
    assert (granted, facts.held, facts.pool) == (SLICE, 2 * SLICE - 1, 84 * MB)
    await report(store, ref, "s1", ACCT_INTERIM, 20 * MB + 2, now)  # holds less than a slice again
    await store.provisioning.set_coupon(ref, False, now)
    assert (await store.top_up(ref, now))[0] == 0  # switch OFF
    await store.provisioning.set_coupon(ref, True, now)
    await store.set_speed(ref, "high", "low")
    assert (await store.top_up(ref, now))[0] == 0  # moved to low meanwhile
    await store.set_speed(ref, "low", "high")
    await report(store, ref, "s1", ACCT_INTERIM, 100 * MB, now)  # the pool runs dry: 4 MB left
    assert (await store.line_facts(ref, now)).pool == 4 * MB
    granted, facts = await store.top_up(ref, now)
    assert (granted, facts.held, facts.pool) == (4 * MB, 4 * MB, 0)
    with pytest.raises(NotFound):
        await store.top_up(LineRef("C1", "09099999999"), now)


# -- R-13 / R-14 -----------------------------------------------------------------------------------


async def test_r13_held_data_survives_expiry_and_months(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))
    a = await new_line(store, "C1")
    b = await new_line(store, "C1")
    await attach(store, a, "s1", at(2025, 4, 2))
    # Months later, after the bundle expired and new ones came: A still holds its 4 MB, B got none of it.
    facts = await store.line_facts(a, at(2025, 9, 15))
    assert facts.held == 4 * MB
    assert (await store.line_facts(b, at(2025, 9, 15))).held == 0
    assert facts.pool == 8 * MB  # August's and September's bundles, untouched


async def test_r14_bucket_expiring_mid_session(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "minimum_start", dt.date(2025, 3, 1), at(2025, 3, 1))
    await store.provisioning.charge("C1", 1, "op", at(2025, 3, 10))  # usable to the end of June
    ref = await new_line(store, "C1")
    res = await attach(store, ref, "s1", at(2025, 6, 30, 23, 50))
    assert res.facts is not None and res.facts.held == SLICE
    assert (await store.line_facts(ref, at(2025, 6, 30, 23, 50))).pool == 90 * MB
    acc = await report(store, ref, "s1", ACCT_INTERIM, 5 * MB, at(2025, 7, 1) - 1)
    assert acc.facts.held == 5 * MB and (await store.line_facts(ref, at(2025, 7, 1) - 1)).pool == 90 * MB
    # At the instant the coupon's 90 MB leave the pool; the line keeps what it holds.
    acc = await report(store, ref, "s1", ACCT_INTERIM, 5 * MB, at(2025, 7, 1))
    assert (acc.added, acc.facts.held) == (0, 5 * MB) and (await store.line_facts(ref, at(2025, 7, 1))).pool == 0
    # past the held 5 MB there is nothing to draw: 3 MB overrun, never a negative balance.
    acc = await report(store, ref, "s1", ACCT_INTERIM, 13 * MB, at(2025, 7, 1, 0, 5))
    assert (acc.debited, acc.overrun_added, acc.granted, acc.facts.held) == (5 * MB, 3 * MB, 0, 0)
    assert (await store.views.contract_view("C1", at(2025, 7, 1, 0, 5))).lines[0].overrun == 3 * MB


# -- R-15 ------------------------------------------------------------------------------------------


async def test_r15_sibling_holding_data_does_not_keep_a_line_fast(store: QuotaStore) -> None:
    await store.provisioning.create_contract("F1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))
    a, b, c = [await new_line(store, "F1") for _ in range(3)]
    res_a = await attach(store, a, "sa", at(2025, 4, 2))
    res_b = await attach(store, b, "sb", at(2025, 4, 2))
    assert res_a.facts is not None and res_a.facts.held == 4 * MB
    assert res_b.facts is not None and (res_b.granted, res_b.facts.held, res_b.facts.pool) == (0, 0, 0)
    plan = catalog().get("tiny")
    assert decide_speed(res_a.facts, plan) == "high"
    assert decide_speed(res_b.facts, plan) == "low"
    assert decide_speed(await store.line_facts(c, at(2025, 4, 2)), plan) == "low"


# -- R-16 / R-17 -----------------------------------------------------------------------------------


async def test_r16_overrun_recorded_never_negative(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    acc = await report(store, ref, "s1", ACCT_START, 0, at(2025, 4, 2))
    assert acc.added == 0
    acc = await report(store, ref, "s1", ACCT_INTERIM, 9 * MB, at(2025, 4, 2))
    assert (acc.added, acc.granted, acc.debited, acc.overrun_added) == (9 * MB, 4 * MB, 4 * MB, 5 * MB)
    assert (acc.facts.held, acc.facts.pool) == (0, 0)
    line = (await store.views.contract_view("C1", at(2025, 4, 2))).lines[0]
    assert (line.held, line.overrun) == (0, 5 * MB)


async def test_r17_low_speed_usage_consumes_no_coupon(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    await attach(store, ref, "s1", at(2025, 4, 2))
    assert await store.set_speed(ref, "", "low")
    acc = await report(store, ref, "s1", ACCT_INTERIM, 50 * MB, at(2025, 4, 2, 10))
    assert (acc.debited, acc.granted, acc.low_added, acc.overrun_added) == (0, 0, 50 * MB, 0)
    facts = await store.line_facts(ref, at(2025, 4, 2, 10))
    assert (acc.facts.held, facts.pool, facts.low_3day) == (SLICE, GB - SLICE, 50 * MB)
    assert await store.set_speed(ref, "low", "restricted")
    acc = await report(store, ref, "s1", ACCT_INTERIM, 60 * MB, at(2025, 4, 3, 10))
    facts = await store.line_facts(ref, at(2025, 4, 3, 10))
    assert (acc.low_added, facts.low_3day, acc.facts.held) == (10 * MB, 60 * MB, SLICE)


async def test_r21_coupon_off_draws_nothing(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    facts = await store.provisioning.set_coupon(ref, False, now=at(2025, 4, 2))
    assert facts.coupon_on is False
    res = await attach(store, ref, "s1", at(2025, 4, 2))
    assert res.ok and res.granted == 0 and res.facts is not None and res.facts.held == 0
    assert decide_speed(res.facts, catalog().get("light_start")) == "low"
    assert (await store.provisioning.set_coupon(ref, True, now=at(2025, 4, 2))).coupon_on is True


async def test_r22_window_and_per_day_usage(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    await store.set_speed(ref, "", "low")
    await report(store, ref, "s1", ACCT_INTERIM, 50 * MB, at(2025, 4, 1, 12))
    await report(store, ref, "s1", ACCT_INTERIM, 90 * MB, at(2025, 4, 2, 12))
    await store.set_speed(ref, "low", "high")
    await report(store, ref, "s1", ACCT_INTERIM, 100 * MB, at(2025, 4, 3, 12))
    await store.set_speed(ref, "high", "low")
    acc = await report(store, ref, "s1", ACCT_INTERIM, 131 * MB, at(2025, 4, 3, 13))
    assert acc.facts.low_3day == 121 * MB  # 50 + 40 + 31; the 10 MB at high speed does not count
    assert decide_speed(acc.facts, catalog().get("light_start")) == "high"  # it still has data
    off = await store.provisioning.set_coupon(ref, False, now=at(2025, 4, 3, 14))
    assert decide_speed(off, catalog().get("light_start")) == "restricted"  # R-22 with R-21
    # 5 April: the window is 3..5 April, 1 April has dropped out.
    facts = await store.line_facts(ref, at(2025, 4, 5, 0, 0))
    assert facts.low_3day == 31 * MB
    usage = await store.views.line_usage(ref, ["20250403", "20250402", "20250401", "20250331"])
    assert [(u.day, u.high, u.low) for u in usage] == [
        ("20250403", 10 * MB, 31 * MB), ("20250402", 0, 40 * MB), ("20250401", 0, 50 * MB), ("20250331", 0, 0)
    ]


async def test_r23_exempt_octets_not_debited(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    await attach(store, ref, "s1", at(2025, 4, 2))
    acc = await report(store, ref, "s1", ACCT_INTERIM, 8 * MB, at(2025, 4, 2), exempt=3 * MB)
    assert (acc.added, acc.debited, acc.facts.held) == (8 * MB, 5 * MB, 5 * MB)
    acc = await report(store, ref, "s1", ACCT_INTERIM, 9 * MB, at(2025, 4, 2), exempt=4 * MB)
    assert (acc.added, acc.debited, acc.facts.held) == (MB, 0, 5 * MB)


# -- R-71 idempotent accounting --------------------------------------------------------------------


async def test_r71_replayed_interim_counted_once(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    await attach(store, ref, "s1", at(2025, 4, 2))
    first = await report(store, ref, "s1", ACCT_INTERIM, 7 * MB, at(2025, 4, 2))
    again = await report(store, ref, "s1", ACCT_INTERIM, 7 * MB, at(2025, 4, 2, 0, 1))
    # An older report delivered late (Acct-Delay-Time dates it before the latest): not counted.
    lower = await store.account(AccountingReport(ref, "s1", ACCT_INTERIM, 6 * MB, "192.0.2.1", at(2025, 4, 2, 0, 2),
                                                 event_time=at(2025, 4, 2) - 60))
    assert (first.added, again.added, lower.added) == (7 * MB, 0, 0)
    assert again.facts.held == lower.facts.held == 3 * MB
    nxt = await report(store, ref, "s1", ACCT_INTERIM, 8 * MB, at(2025, 4, 2, 0, 3))
    assert (nxt.added, nxt.facts.held) == (MB, 2 * MB)  # counted from the latest counter


async def test_r71_stop_removes_live_session_and_retransmission_counts_once(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    await attach(store, ref, "s1", at(2025, 4, 2))
    assert [s.session_id for s in await store.live_sessions(ref)] == ["s1"]
    stop = await report(store, ref, "s1", ACCT_STOP, 4 * MB, at(2025, 4, 2, 1))
    again = await report(store, ref, "s1", ACCT_STOP, 4 * MB, at(2025, 4, 2, 1, 0, 3))
    late = await report(store, ref, "s1", ACCT_INTERIM, 3 * MB, at(2025, 4, 2, 1, 0, 5))
    assert (stop.added, again.added, late.added) == (4 * MB, 0, 0)
    assert await store.live_sessions(ref) == []
    assert late.facts.held == 6 * MB


async def test_r71_interim_for_unknown_session_creates_it(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    acc = await store.account(AccountingReport(ref, "lost-start", ACCT_INTERIM, 12 * MB, "192.0.2.9",
                                               at(2025, 4, 2), framed_ip="100.64.9.9"))
    assert (acc.added, acc.granted, acc.debited, acc.facts.held) == (12 * MB, 2 * SLICE, 12 * MB, 8 * MB)
    sessions = await store.live_sessions(ref)
    assert [(s.session_id, s.nas_ip, s.framed_ip) for s in sessions] == [("lost-start", "192.0.2.9", "100.64.9.9")]


async def test_r71_gigaword_counters(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "tiny", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    big = 3 * 2**32 + 12_345  # Acct-Input-Gigawords folded in
    acc = await report(store, ref, "s1", ACCT_INTERIM, big, at(2025, 4, 2))
    assert (acc.added, acc.granted, acc.debited, acc.overrun_added) == (big, 4 * MB, 4 * MB, big - 4 * MB)
    await store.set_speed(ref, "", "low")
    bigger = 7 * 2**32 + 1
    acc = await report(store, ref, "s1", ACCT_INTERIM, bigger, at(2025, 4, 2, 1))  # 16 GiB in an hour
    assert (acc.added, acc.low_added, acc.facts.low_3day) == (bigger - big, bigger - big, bigger - big)
    assert (await store.views.line_usage(ref, ["20250402"]))[0].high == big
    assert (await store.views.contract_view("C1", at(2025, 4, 2))).lines[0].overrun == big - 4 * MB


async def test_accounting_on_off_changes_nothing(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    acc = await report(store, ref, "s1", ACCT_ON, 5 * MB, at(2025, 4, 2))
    assert (acc.added, acc.facts.held, acc.facts.pool) == (0, 0, GB)


async def test_account_unknown_line(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    with pytest.raises(NotFound):
        await report(store, LineRef("C1", "0000"), "s1", ACCT_INTERIM, 1, at(2025, 4, 2))
    with pytest.raises(NotFound):
        await report(store, LineRef("C9", "0000"), "s1", ACCT_INTERIM, 1, at(2025, 4, 2))


# -- lines: limits, duplicates, lookups, status ----------------------------------------------------


async def test_plan_line_limit_4th_family_line_refused_nothing_half_written(store: QuotaStore) -> None:
    await store.provisioning.create_contract("F1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    for n in (1, 2, 3):
        await new_line(store, "F1", n)
    with pytest.raises(LimitExceeded) as err:
        await new_line(store, "F1", 4)
    assert err.value.rule == "§3"
    assert await store.find_line("44010" + "4".zfill(10), None) is None
    assert await store.find_line(None, "0901" + "4".zfill(7)) is None
    assert len((await store.views.contract_view("F1", at(2025, 4, 1))).lines) == 3
    # The refused identifiers are free for another contract.
    await store.provisioning.create_contract("F2", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    assert await new_line(store, "F2", 4) == LineRef("F2", "09010000004")


async def test_r2_cached_lookups_answer_alike_and_hold_nothing_the_collector_tracks(store: QuotaStore) -> None:
    """R-2 lookups from the in-process cache give the same answers as from Redis (a line, or None
    for an unknown card), and the cache holds only untracked values once a collection has seen
    them: its size, up to index_cache_entries, never lengthens a garbage-collection pause."""
    import gc

    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1", 1)
    for _ in range(2):  # from Redis, then from the cache
        assert await store.find_line("44010" + "1".zfill(10), None) == ref
        assert await store.find_line(None, "0901" + "1".zfill(7)) == ref
        assert await store.find_line("44010" + "9".zfill(10), None) is None
    assert len(store.index.cache) == 3
    gc.collect()
    assert [v for v in store.index.cache.values() if gc.is_tracked(v)] == []


async def test_light_start_takes_one_line(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    await new_line(store, "C1", 1)
    with pytest.raises(LimitExceeded):
        await new_line(store, "C1", 2)


async def test_duplicate_imsi_refused_nothing_half_written(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    first = await store.provisioning.add_line("C1", "09000000001", "8981000000000000001", "440100000000001")
    with pytest.raises(Conflict) as err:
        await store.provisioning.add_line("C1", "09000000002", "8981000000000000002", "440100000000001")
    assert (err.value.field, err.value.rule) == ("imsi", "R-2")
    assert await store.find_line("440100000000001", None) == first
    assert await store.find_line(None, "09000000002") is None
    view = await store.views.contract_view("C1", at(2025, 4, 1))
    assert [line.msisdn for line in view.lines] == ["09000000001"]
    # The refused MSISDN and ICCID were not left claimed.
    second = await store.provisioning.add_line("C1", "09000000002", "8981000000000000002", "440100000000002")
    assert await store.find_line("440100000000002", None) == second


async def test_duplicate_msisdn_and_iccid_refused(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    await store.provisioning.create_contract("C2", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    await store.provisioning.add_line("C1", "09000000001", "8981000000000000001", "440100000000001")
    with pytest.raises(Conflict) as err:
        await store.provisioning.add_line("C2", "09000000001", "8981000000000000009", "440100000000009")
    assert err.value.field == "msisdn"
    with pytest.raises(Conflict) as err:
        await store.provisioning.add_line("C2", "09000000009", "8981000000000000001", "440100000000009")
    assert err.value.field == "iccid"
    assert (await store.views.contract_view("C2", at(2025, 4, 1))).lines == []


async def test_add_line_to_unknown_contract_leaves_no_index(store: QuotaStore) -> None:
    with pytest.raises(NotFound):
        await store.provisioning.add_line("nope", "09000000001", "8981000000000000001", "440100000000001")
    assert await store.find_line("440100000000001", None) is None
    assert await store.client.get(k.iccid_index("8981000000000000001")) is None


async def test_r2_find_line_prefers_imsi(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    a = await new_line(store, "C1", 1)
    b = await new_line(store, "C1", 2)
    assert await store.find_line("440100000000002", "09010000001") == b
    assert await store.find_line(None, "09010000001") == a
    assert await store.find_line("440109999999999", "09010000001") is None  # unknown IMSI: no fallback
    assert await store.find_line(None, None) is None


async def test_r3_attach_refusals_hold_no_address(make_store: StoreFactory) -> None:
    store = await make_store(ip_range="100.64.0.0/30")  # two addresses
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    a, b, c = [await new_line(store, "C1", n) for n in (1, 2, 3)]
    now = at(2025, 4, 2)
    await store.provisioning.set_status(b, "suspended", now=now)
    await store.provisioning.set_status(c, "terminated", now=now)
    assert (await attach(store, b, "s", now)).reason == "suspended"
    assert (await attach(store, c, "s", now)).reason == "terminated"
    assert (await attach(store, LineRef("C1", "0000"), "s", now)).reason == "unknown"
    assert (await attach(store, LineRef("C9", "0000"), "s", now)).reason == "unknown"
    refused = await attach(store, a, "s", now, imsi="440109999999999")
    assert (refused.ok, refused.reason, refused.granted, refused.framed_ip) == (False, "card_replaced", 0, None)
    assert await store.live_sessions(a) == [] and await store.live_sessions(b) == []
    ips = {(await attach(store, a, sid, now)).framed_ip for sid in ("s1", "s2")}
    assert ips == {"100.64.0.1", "100.64.0.2"}
    await store.provisioning.set_status(b, "active", now=now)
    assert (await attach(store, b, "s", now)).ok is False  # no address left
    with pytest.raises(Conflict):
        await store.provisioning.set_status(c, "active", now=now)


async def test_set_status_frees_plan_slot_on_termination(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    first = await new_line(store, "C1", 1)
    await store.provisioning.set_status(first, "terminated", now=at(2025, 4, 1))
    await new_line(store, "C1", 2)
    with pytest.raises(QuotaError):
        await store.provisioning.set_status(first, "gone", now=at(2025, 4, 1))
    with pytest.raises(NotFound):
        await store.provisioning.set_status(LineRef("C1", "0"), "active", now=at(2025, 4, 1))


# -- speed compare-and-set -------------------------------------------------------------------------


async def test_set_speed_exactly_one_winner(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    results = await asyncio.gather(*(store.set_speed(ref, "", "low") for _ in range(20)))
    assert results.count(True) == 1
    assert await store.set_speed(ref, "high", "low") is False
    with pytest.raises(NotFound):
        await store.set_speed(LineRef("C1", "0"), "", "low")
    with pytest.raises(QuotaError):
        await store.set_speed(ref, "low", "turbo")


# -- concurrency -----------------------------------------------------------------------------------


async def test_concurrent_family_never_hands_out_more_than_the_pool(make_store: StoreFactory) -> None:
    stores = [await make_store() for _ in range(3)]  # several "processes"
    now = at(2025, 4, 2)
    await stores[0].provisioning.create_contract("F1", "small_family", dt.date(2025, 4, 1), at(2025, 4, 1))
    lines = [await new_line(stores[0], "F1") for _ in range(3)]
    pool_before = (await stores[0].views.contract_view("F1", now)).pool
    assert pool_before == 200 * MB
    rng = random.Random(7)
    counters = {(line, f"s{i}"): 0 for line in lines for i in range(3)}
    calls: list[Awaitable[AttachResult | AccountResult]] = []
    for n in range(300):
        (line, sid) = rng.choice(list(counters))
        st = stores[n % 3]
        if rng.random() < 0.2:
            calls.append(st.attach(AttachRequest(line, None, sid, "192.0.2.1", now)))
        else:
            counters[(line, sid)] += rng.randrange(0, 3 * MB)
            calls.append(st.account(AccountingReport(line, sid, ACCT_INTERIM, counters[(line, sid)],
                                                     "192.0.2.1", now)))
    results = await asyncio.gather(*calls)
    granted = sum(r.granted for r in results)
    view = await stores[0].views.contract_view("F1", now)
    assert granted == pool_before - view.pool
    assert view.pool >= 0 and all(line.held >= 0 for line in view.lines)
    # Every counted byte is accounted for: debited from held or recorded as overrun.
    accs = [r for r in results if isinstance(r, AccountResult)]
    assert sum(r.added for r in accs) == sum(r.debited + r.overrun_added for r in accs)
    assert granted == sum(line.held for line in view.lines) + sum(r.debited for r in accs)
    assert sum(line.overrun for line in view.lines) == sum(r.overrun_added for r in accs)


# -- IP leases (R-5) -------------------------------------------------------------------------------


async def test_r5_ip_leases_unique(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    lines = [await new_line(store, "C1") for _ in range(3)]
    now = at(2025, 4, 2)
    results = await asyncio.gather(*(attach(store, lines[i % 3], f"s{i}", now) for i in range(120)))
    ips = [r.framed_ip for r in results]
    assert all(r.ok for r in results) and len(set(ips)) == 120
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("100.64.0.0/16") for ip in ips if ip)
    assert "100.64.0.0" not in ips
    # A re-authorization of a live session keeps its address.
    again = await store.attach(AttachRequest(lines[0], None, "s0", "192.0.2.1", now))
    assert again.framed_ip == ips[0]


async def test_r5_ip_released_on_stop_and_reclaimed_after_lapse(make_store: StoreFactory) -> None:
    store = await make_store(ip_range="10.0.0.0/29", lease_seconds=600)  # 6 usable addresses
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    now = at(2025, 4, 2)
    got = [(await attach(store, ref, f"s{i}", now)).framed_ip for i in range(6)]
    assert got == [f"10.0.0.{n}" for n in range(1, 7)]  # never .0 (network) nor .7 (broadcast)
    full = await attach(store, ref, "s6", now)
    assert (full.ok, full.reason, full.framed_ip) == (False, "no_address", None)
    assert "s6" not in {s.session_id for s in await store.live_sessions(ref)}
    # Stop releases at once.
    await report(store, ref, "s2", ACCT_STOP, 0, now + 10)
    assert (await attach(store, ref, "s7", now + 10)).framed_ip == "10.0.0.3"
    # Interim renews s0's lease; the others lapse after 600 s and are reclaimed by new sessions.
    await report(store, ref, "s0", ACCT_INTERIM, 0, now + 500)
    later = now + 700
    reclaimed = {(await attach(store, ref, f"n{i}", later)).framed_ip for i in range(5)}
    assert reclaimed == {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
    assert (await attach(store, ref, "n5", later)).reason == "no_address"  # s0 still holds .1
    sessions = {s.session_id: s.framed_ip for s in await store.live_sessions(ref)}
    assert sessions["s0"] == "10.0.0.1" and sessions["n0"] in reclaimed


async def test_r5_interim_renews_a_lease_at_most_once_a_quarter_lease(make_store: StoreFactory) -> None:
    store = await make_store(lease_seconds=600)  # renewals within 150 s of the last one are skipped
    await store.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    now = at(2025, 4, 2)
    leases, _, byowner, _ = k.IpPoolKeys("100.64.0.0/16").all()

    async def expiry() -> float:
        ip = await store.client.hget(byowner, k.session_owner("C1", ref.msisdn, "s0"))
        return float(await store.client.zscore(leases, ip))

    await attach(store, ref, "s0", now)
    assert await expiry() == now + 600
    await report(store, ref, "s0", ACCT_START, 0, now + 5)  # the attach leased it 5 s ago: not renewed
    await report(store, ref, "s0", ACCT_INTERIM, 10, now + 149)
    assert await expiry() == now + 600
    await report(store, ref, "s0", ACCT_INTERIM, 20, now + 150)  # a quarter lease on: renewed
    assert await expiry() == now + 750
    await report(store, ref, "s0", ACCT_INTERIM, 30, now + 200)
    assert await expiry() == now + 750
    # A second store (another worker) has no memo of its own renewals: it renews.
    other = await make_store(lease_seconds=600)
    await report(other, ref, "s0", ACCT_INTERIM, 40, now + 201)
    assert await expiry() == now + 801
    # Stop releases the lease; the session's usage was counted on every report regardless.
    stopped = await report(store, ref, "s0", ACCT_STOP, 50, now + 202)
    assert stopped.added == 10
    assert await store.client.hget(byowner, k.session_owner("C1", ref.msisdn, "s0")) is None
    assert len(store.leases.renewals) == 0
    # A session the gateway reports without an attach here holds no lease: a renewal found none,
    # and the next quarter lease of Interims does not ask again (nor does it lease one).
    await report(store, ref, "g1", ACCT_START, 0, now + 300)
    owner = k.session_owner("C1", ref.msisdn, "g1")
    assert store.leases.renewals.due(owner, now + 449) is False and store.leases.renewals.due(owner, now + 450) is True
    await report(store, ref, "g1", ACCT_INTERIM, 10, now + 310)
    assert await store.client.hget(byowner, owner) is None


async def test_r5_reauth_reuses_a_noted_lease_only_for_the_same_live_session(make_store: StoreFactory) -> None:
    """A re-authorization within a quarter lease reuses the address this process leased; after a
    Stop or a refusal in another process (which give the address back) it leases afresh, and
    never hands out an address that another session holds by then."""
    a = await make_store(ip_range="10.0.0.0/29", lease_seconds=600)  # one worker
    b = await make_store(ip_range="10.0.0.0/29", lease_seconds=600)  # another worker
    await a.provisioning.create_contract("C1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref, other = await new_line(a, "C1"), await new_line(a, "C1")
    now = at(2025, 4, 2)
    assert (await attach(a, ref, "s1", now)).framed_ip == "10.0.0.1"
    assert (await attach(a, ref, "s1", now + 1)).framed_ip == "10.0.0.1"  # from the note
    # Stop in the other worker gives .1 back, and another session takes it at once.
    await report(b, ref, "s1", ACCT_STOP, 0, now + 2)
    assert (await attach(b, other, "t1", now + 3)).framed_ip == "10.0.0.1"
    again = await attach(a, ref, "s1", now + 4)  # a new session under the same id: not .1
    assert (again.ok, again.framed_ip) == (True, "10.0.0.2")
    assert (await attach(a, ref, "s1", now + 5)).framed_ip == "10.0.0.2"  # noted again
    # A refusal in the other worker releases the address too; the note is no longer trusted.
    await a.provisioning.set_status(ref, "suspended", now=now + 6)
    assert (await attach(b, ref, "s1", now + 7)).reason == "suspended"
    await a.provisioning.set_status(ref, "active", now=now + 8)
    t2 = (await attach(b, other, "t2", now + 9)).framed_ip
    back = await attach(a, ref, "s1", now + 10)
    assert back.ok and back.framed_ip not in {"10.0.0.1", t2}
    _, _, byowner, _ = k.IpPoolKeys("10.0.0.0/29").all()
    held = await a.client.hget(byowner, k.session_owner("C1", ref.msisdn, "s1"))
    assert str(ipaddress.IPv4Address(int(held))) == back.framed_ip  # what the pool says s1 holds


async def fast_store_with_line(make_store: StoreFactory, backend: tuple[str, bool, bool]) -> tuple[QuotaStore, LineRef]:
    """A store on the daemon's pipelining client (lease 600 s) and a line of a new contract; the
    test is skipped on the other backends (what it checks is that client's)."""
    if not backend[2]:
        pytest.skip("about the pipelining client on one Redis")
    store = await make_store(lease_seconds=600)
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    return store, await new_line(store, "C1")


async def test_r5_lease_notes_are_dropped_when_the_connection_to_redis_is_lost(
        make_store: StoreFactory, backend: tuple[str, bool, bool]) -> None:
    """A new connection may be to a Redis that restarted without its last writes: the addresses
    noted before are not trusted; the attach leases again and gets what Redis holds."""
    store, ref = await fast_store_with_line(make_store, backend)  # notes are taken on it only
    now = at(2025, 4, 2)
    first = await attach(store, ref, "s1", now)
    admin = sync_redis.Redis.from_url(backend[0])

    async def attach_counting(t: float) -> tuple[int, int]:
        """(script calls, snapshots of reads: quota.steady) of one re-authorization."""
        admin.config_resetstat()
        assert (await attach(store, ref, "s1", t)).framed_ip == first.framed_ip
        stats = admin.info("commandstats")
        return (int(stats.get("cmdstat_evalsha", {}).get("calls", 0)),
                int(stats.get("cmdstat_exec", {}).get("calls", 0)))

    assert await attach_counting(now + 1) == (0, 1)  # from the note, and nothing changes: reads alone
    admin.client_kill_filter(_type="normal", skipme=True)  # every other connection, as a restart would
    await asyncio.sleep(0.1)
    assert await attach_counting(now + 2) == (2, 0)  # notes dropped: attach and ip_alloc
    assert await attach_counting(now + 3) == (2, 0)  # the first on the new connection takes no note
    assert await attach_counting(now + 4) == (0, 1)  # noted again
    admin.close()


async def redis_commands(store: QuotaStore) -> dict[str, int]:
    stats = await store.client.info("commandstats")
    # CONFIG RESETSTAT itself is listed as `config` (Redis 6.2) or `config|resetstat` (Redis 7, Valkey).
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()
            if name.removeprefix("cmdstat_").split("|")[0] != "config"}


async def test_hot_path_redis_commands_per_request(make_store: StoreFactory, backend: tuple[str, bool, bool]) -> None:
    """The Redis work of a re-authorization and of an Interim on the daemon's pipelining client,
    command by command (issue 7: a script call costs ~30 µs of Redis CPU, each write also goes
    to the append-only file). R-3/R-12/R-16 run in full."""
    store, ref = await fast_store_with_line(make_store, backend)
    now = at(2025, 4, 2)
    await attach(store, ref, "s1", now)
    await report(store, ref, "s1", ACCT_START, 0, now + 1)
    await store.client.config_resetstat()
    again = await attach(store, ref, "s1", now + 2)  # a re-authorization of the live session
    assert again.ok and again.granted == 0 and again.facts is not None and again.facts.held == SLICE
    assert again.framed_ip == "100.64.0.1"
    assert await redis_commands(store) == {
        # This process leased the address within a quarter lease (RenewalMemo) and nothing changes
        # (quota.steady): the contract, line and session read in one MULTI/EXEC, no script, no write.
        "multi": 1, "hmget": 3, "exec": 1,
    }
    await store.client.config_resetstat()
    later = await attach(store, ref, "s1", now + 160)  # a quarter lease (150 s) on: renewed
    assert later.framed_ip == "100.64.0.1"
    assert (await redis_commands(store))["evalsha"] == 2
    await report(store, ref, "s1", ACCT_INTERIM, 2 * MB, now + 161)  # today's first usage
    await store.client.config_resetstat()
    acc = await report(store, ref, "s1", ACCT_INTERIM, 5 * MB, now + 162)
    assert (acc.added, acc.debited, acc.facts.held) == (3 * MB, 3 * MB, SLICE - 5 * MB)
    assert await redis_commands(store) == {
        "evalsha": 1,  # account; the lease was renewed within a quarter lease (RenewalMemo)
        "hmget": 3, "hset": 2, "hincrby": 1,  # session, held; today's usage; no pool or day read
    }


async def test_session_and_day_ttls_are_set_without_a_write_per_request(store: QuotaStore) -> None:
    """A live session's expiry (quota.session_ttl_seconds, 3 days) is pushed back at most once per
    1/48 of it (90 minutes); a day's usage key gets its TTL with its first usage."""
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(store, "C1")
    now = at(2025, 4, 2)
    ck = k.ContractKeys("C1")
    session = ck.session(ref.msisdn, "s1")

    async def ttl_at() -> float:
        return float(await store.client.hget(session, "ttl_at"))

    await attach(store, ref, "s1", now)
    assert await ttl_at() == now and 0 < await store.client.ttl(session) <= 3 * 86400
    await store.client.persist(session)  # so that a refresh shows as a TTL again
    await attach(store, ref, "s1", now + 5399)
    await report(store, ref, "s1", ACCT_INTERIM, MB, now + 5399)
    assert await ttl_at() == now and await store.client.ttl(session) == -1  # not pushed back yet
    await report(store, ref, "s1", ACCT_INTERIM, 2 * MB, now + 5400)
    assert await ttl_at() == now + 5400 and 0 < await store.client.ttl(session) <= 3 * 86400
    await store.client.persist(session)
    await attach(store, ref, "s1", now + 10800)
    assert await ttl_at() == now + 10800 and 0 < await store.client.ttl(session) <= 3 * 86400
    day = ck.usage(ref.msisdn, "20250402")
    assert 0 < await store.client.ttl(day) <= 8 * 86400  # set with the day's first usage
    await report(store, ref, "s1", ACCT_STOP, 3 * MB, now + 10801)
    assert 0 < await store.client.ttl(session) <= 3 * 86400  # a stopped session: quota.stopped_ttl_seconds


# -- queries ---------------------------------------------------------------------------------------


async def test_r35_contract_view(store: QuotaStore) -> None:
    await store.provisioning.create_contract("F1", "family_share", dt.date(2025, 4, 1), at(2025, 4, 1))
    coupon = await store.provisioning.charge("F1", 2, "op", at(2025, 4, 3))
    a = await store.provisioning.add_line("F1", "09000000001", "8981000000000000001", "440100000000001",
                                          card_type="micro", voice=True)
    b = await store.provisioning.add_line("F1", "09000000002", "8981000000000000002", "440100000000002")
    await attach(store, a, "s1", at(2025, 4, 4))
    await attach(store, a, "s2", at(2025, 4, 4))
    await store.provisioning.set_coupon(b, False, now=at(2025, 4, 4))
    view = await store.views.contract_view("F1", at(2025, 4, 4))
    assert [(x.id, x.kind, x.size, x.left, x.expires_at) for x in view.buckets] == [
        ("00000001", "bundle", GB, GB - SLICE, at(2025, 6, 1)),
        (coupon.id, "coupon", 200 * MB, 200 * MB, at(2025, 8, 1)),
    ]
    assert view.pool == GB + 200 * MB - SLICE
    la, lb = view.lines
    assert (la.msisdn, la.card_type, la.voice, la.held, la.coupon_on, la.sessions, la.status) == (
        "09000000001", "micro", True, SLICE, True, 2, "active")
    assert (lb.msisdn, lb.held, lb.coupon_on, lb.sessions) == ("09000000002", 0, False, 0)
    with pytest.raises(NotFound):
        await store.views.contract_view("nope", at(2025, 4, 4))


async def test_r32_card_change_rewrites_the_index(store: QuotaStore) -> None:
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await store.provisioning.add_line("C1", "09000000001", "8981000000000000001", "440100000000001")
    await attach(store, ref, "s1", at(2025, 4, 2))
    await store.provisioning.replace_card(ref, "8981000000000000002", "440100000000002", card_type="micro")
    assert await store.find_line("440100000000001", None) == ref  # retired: still names its line...
    assert await store.find_line("440100000000002", None) == ref
    retired = k.index_value("C1", "09000000001", k.RETIRED).encode()
    assert await store.client.get(k.iccid_index("8981000000000000001")) == retired
    old = await attach(store, ref, "s2", at(2025, 4, 2), imsi="440100000000001")
    assert (old.ok, old.reason) == (False, "card_replaced")  # ... which refuses it
    with pytest.raises(Conflict):  # a replaced card never becomes another line's
        await store.provisioning.add_line("C1", "09000000002", "8981000000000000008", "440100000000001")
    new = await attach(store, ref, "s3", at(2025, 4, 2), imsi="440100000000002")
    assert new.ok and new.facts is not None and new.facts.held == SLICE  # held data carried over
    line = (await store.views.contract_view("C1", at(2025, 4, 2))).lines[0]
    assert (line.iccid, line.imsi, line.card_type) == ("8981000000000000002", "440100000000002", "micro")
    # A card already in use elsewhere is refused, and nothing changes.
    await store.provisioning.create_contract("C2", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    await store.provisioning.add_line("C2", "09000000009", "8981000000000000009", "440100000000009")
    with pytest.raises(Conflict):
        await store.provisioning.replace_card(ref, "8981000000000000003", "440100000000009")
    assert await store.find_line("440100000000002", None) == ref
    assert await store.client.get(k.iccid_index("8981000000000000003")) is None
    with pytest.raises(NotFound):
        await store.provisioning.replace_card(LineRef("C1", "0"), "8981000000000000004", "440100000000004")
    assert await store.client.get(k.imsi_index("440100000000004")) is None


async def test_r32_r33_pending_card_then_activation(store: QuotaStore) -> None:
    """R-32: a pending card's IMSI resolves to the line but cannot attach until activated; the old
    card works until then. R-33: a lost card suspends the line, which only activation resumes.
    A process that still maps the old IMSI to the line (its cache) is refused by the attach
    script. Held data, switch and usage stay with the line."""
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await store.provisioning.add_line("C1", "09000000001", "8981000000000000001", "440100000000001")
    assert (await attach(store, ref, "s1", at(2025, 4, 2), imsi="440100000000001")).ok
    await report(store, ref, "s1", ACCT_INTERIM, 4 * MB, at(2025, 4, 2))
    await store.provisioning.set_coupon(ref, False, at(2025, 4, 2))
    facts = await store.provisioning.add_card(ref, "8981000000000000002", "440100000000002", "micro", "type-change",
                                              at(2025, 4, 2))
    assert (facts.status, facts.held, facts.coupon_on) == ("active", 6 * MB, False)
    assert await store.find_line("440100000000002", None) == ref
    pending = await attach(store, ref, "s2", at(2025, 4, 2), imsi="440100000000002")
    assert (pending.ok, pending.reason) == (False, "card_pending")
    assert (await attach(store, ref, "s1", at(2025, 4, 2), imsi="440100000000001")).ok
    with pytest.raises(Conflict) as info:
        await store.provisioning.add_card(ref, "8981000000000000003", "440100000000003", "nano", "lost", at(2025, 4, 2))
    assert (info.value.field, info.value.rule) == ("iccid", "R-32")
    assert await store.client.get(k.imsi_index("440100000000003")) is None

    done = await store.provisioning.activate_card(ref, "8981000000000000002", at(2025, 4, 3))
    assert done.old is not None and (done.old.imsi, done.card.imsi, done.reason) == (
        "440100000000001", "440100000000002", "type-change")
    assert (done.facts.held, done.facts.coupon_on) == (6 * MB, False)
    assert await store.find_line("440100000000001", None) == ref
    old = await attach(store, ref, "s3", at(2025, 4, 3), imsi="440100000000001")
    assert (old.ok, old.reason) == (False, "card_replaced")
    assert (await attach(store, ref, "s4", at(2025, 4, 3), imsi="440100000000002")).ok
    again = await store.provisioning.activate_card(ref, "8981000000000000002", at(2025, 4, 3))
    assert again.old is None
    (day,) = await store.views.line_usage(ref, ["20250402"])
    assert day.high == 4 * MB  # the usage history is the line's

    # lost card → suspended; resume refused; activation resumes on the new card.
    facts = await store.provisioning.add_card(ref, "8981000000000000005", "440100000000005", "nano", "lost", at(2025,
                                              4, 4))
    assert facts.status == "suspended"
    with pytest.raises(Conflict) as info:
        await store.provisioning.set_status(ref, "active", at(2025, 4, 4))
    assert (info.value.field, info.value.rule) == ("status", "R-33")
    refused = await attach(store, ref, "s5", at(2025, 4, 4), imsi="440100000000002")
    assert (refused.ok, refused.reason) == (False, "suspended")
    done = await store.provisioning.activate_card(ref, "8981000000000000005", at(2025, 4, 4))
    assert (done.reason, done.facts.status) == ("lost", "active")
    assert (await attach(store, ref, "s6", at(2025, 4, 4), imsi="440100000000005")).ok
    with pytest.raises(NotFound) as nf:
        await store.provisioning.activate_card(ref, "8981000000000000009", at(2025, 4, 4))
    assert nf.value.field == "iccid"


async def test_r32_activation_restores_a_new_cards_index_lost_with_its_claim(store: QuotaStore) -> None:
    """R-32: if add_card died after storing the card but before committing its index claims (they
    lapse), activation still leaves the new card findable and the old one not."""
    await store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await store.provisioning.add_line("C1", "09000000001", "8981000000000000001", "440100000000001")
    await store.provisioning.add_card(ref, "8981000000000000002", "440100000000002", "nano", "broken", at(2025, 4, 2))
    await store.client.delete(k.iccid_index("8981000000000000002"), k.imsi_index("440100000000002"))
    await store.provisioning.activate_card(ref, "8981000000000000002", at(2025, 4, 2))
    store.index.forget(k.imsi_index("440100000000002"))
    assert await store.find_line("440100000000002", None) == ref
    assert await store.client.get(k.iccid_index("8981000000000000002")) == k.index_value("C1", "09000000001").encode()
    assert await store.client.get(k.imsi_index("440100000000001")) == k.index_value(
        "C1", "09000000001", k.RETIRED).encode()


# -- the hot path's pipelining client --------------------------------------------------------------


async def test_fast_path_gives_the_same_answers_and_reloads_flushed_scripts(redis_url: str) -> None:
    """R-3/R-16 on the pipelining client (encoded argument runs, paired calls): the same results as
    the smoke test, and a Redis that lost its scripts (restart, SCRIPT FLUSH) is given them again."""
    from quotad.quota.fastredis import FastRedis

    fast = FastRedis(redis_url)
    store = QuotaStore(make_client(redis_url, max_connections=4), QuotaSettings(), catalog(), fast)
    await store.load_scripts()
    try:
        now = at(2025, 4, 15, 12)
        await store.provisioning.create_contract("F1", "family_share", dt.date(2025, 4, 15), now)
        ref = await store.provisioning.add_line("F1", "09011113333", "8981000000000000091", "440101234567891", now=now)
        res = await attach(store, ref, "s1", now, imsi="440101234567891")
        assert res.ok and res.granted == SLICE and res.facts is not None and res.facts.held == SLICE
        assert res.framed_ip is not None
        assert ipaddress.IPv4Address(res.framed_ip) in ipaddress.ip_network("100.64.0.0/10")
        sync_redis.Redis.from_url(redis_url).script_flush()
        acc = await report(store, ref, "s1", ACCT_INTERIM, 25 * MB, now + 60)
        assert (acc.added, acc.debited, acc.granted, acc.overrun_added) == (25 * MB, 25 * MB, 2 * SLICE, 0)
        sync_redis.Redis.from_url(redis_url).script_flush()
        again = await attach(store, ref, "s2", now + 120, imsi="440101234567891")
        assert again.ok and again.framed_ip not in (None, res.framed_ip)
    finally:
        await fast.aclose()
        await store.close()


async def test_r5_a_session_holding_no_address_runs_no_lease_script(
        make_store: StoreFactory, backend: tuple[str, bool, bool]) -> None:
    """A session quotad leased no address to (its gateway assigns addresses itself, or it was first
    named by a report) costs its reports no lease script: a plain read of its address finds none,
    where a script call costs Redis ~20 µs however little it does. A leased session's Stop still
    gives its address back, and the next attach gets it again."""
    store, ref = await fast_store_with_line(make_store, backend)
    now = at(2025, 4, 2)
    await store.client.config_resetstat()
    await report(store, ref, "g1", ACCT_START, 0, now)
    assert await redis_commands(store) == {
        "hget": 1 + 3,  # the lease's holder (none); account: the 3-day window's low usage
        "evalsha": 1, "hmget": 3, "hgetall": 1, "hset": 1, "sadd": 1, "expire": 1,  # account (no record to delete)
    }
    await store.client.config_resetstat()
    await report(store, ref, "g1", ACCT_INTERIM, MB, now + 160)  # a quarter lease on: a renewal is due
    assert (await redis_commands(store)).get("evalsha") == 1
    await store.client.config_resetstat()
    await report(store, ref, "g1", ACCT_STOP, 2 * MB, now + 170)
    stats = await redis_commands(store)
    assert (stats.get("evalsha"), stats.get("hget")) == (1, 1)  # account; no address to release
    leased = await attach(store, ref, "s1", now + 200)
    assert leased.framed_ip == "100.64.0.1"
    await report(store, ref, "s1", ACCT_START, 0, now + 201)
    await store.client.config_resetstat()
    await report(store, ref, "s1", ACCT_STOP, MB, now + 202)
    assert (await redis_commands(store)).get("evalsha") == 2  # account and ip_release
    assert await store.leases.address_of(k.session_owner(ref.contract_id, ref.msisdn, "s1")) is None
    assert (await attach(store, ref, "s2", now + 203)).framed_ip == "100.64.0.1"  # back in the pool
