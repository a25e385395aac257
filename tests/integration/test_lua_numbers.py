"""The scripts pass byte counts to redis.call as Lua numbers and reply with them as integers
(_lib.lua): every server writes and answers an integer up to 2^53 as its exact digits, where Lua's
own formatting would write 1e+15. On each backend of conftest.backend (and under
QUOTAD_REDIS_SERVER, each server: Valkey 8, Redis 7.0, Redis 6.2)."""

from __future__ import annotations

import datetime as dt

from quotad.quota import keys as k
from quotad.quota.model import ACCT_INTERIM, ACCT_START, ACCT_STOP, AccountingReport
from tests.integration.storekit import StoreFactory, at, new_line

T = at(2026, 11, 10, 12)
BIG = (10**15, 10**15 + 1, 2**53 - 1)  # 10^15: Lua's tostring gives 1e+15


async def test_byte_counts_up_to_2_53_are_written_and_answered_exactly(make_store: StoreFactory) -> None:
    store = await make_store(max_report_slack_bytes=2**53)
    await store.provisioning.create_contract("C1", "light_start", dt.date(2026, 11, 1), T)
    ref = await new_line(store, "C1", now=T)
    session = k.ContractKeys("C1").session(ref.msisdn, "s1")
    day = k.ContractKeys("C1").usage(ref.msisdn, "20261110")
    start = await store.account(AccountingReport(ref, "s1", ACCT_START, 0, "192.0.2.1", T, gateway="gw-a"))
    held = start.facts.held
    last, debited, overrun = 0, 0, 0
    for i, octets in enumerate(BIG, 1):
        status = ACCT_STOP if i == len(BIG) else ACCT_INTERIM
        res = await store.account(AccountingReport(ref, "s1", status, octets, "192.0.2.1", T + 60 * i,
                                                   gateway="gw-a"))
        assert res.added == octets - last
        assert res.debited + res.overrun_added == octets - last
        last, debited, overrun = octets, debited + res.debited, overrun + res.overrun_added
        held = held + res.granted - res.debited
        assert res.facts.held == held
        assert await store.client.hmget(session, "octets", "chg") == [str(octets).encode()] * 2
    assert await store.client.hget(day, "high") == str(2**53 - 1).encode()
    assert await store.client.hget(k.ContractKeys("C1").line(ref.msisdn), "overrun") == str(overrun).encode()
    assert debited + overrun == 2**53 - 1
