"""The identity state in a real Redis and the attach script's gate (R-3, R-50, R-51, R-73)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot

from quotad.identity.records import LOG_KEEP, IdentityKeys, IdentityStore, IdentityStoreError
from quotad.identity.verify import Holder, Refusal, Verified
from quotad.policy.plans import GB, MB, default_catalog
from quotad.quota import keys as k
from quotad.quota.model import AttachRequest, AttachResult, LineRef, QuotaSettings
from quotad.quota.store import QuotaStore
from tests.redis_client import make_client

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=JST).timestamp()
HOLDER = Holder("山田", "太郎", "東京都千代田区神田神保町1-105", dt.date(1990, 4, 1))
OK = Verified("drivers_licence", None, ("ab" * 32,))


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[tuple[QuotaStore, IdentityStore]]:
    store = QuotaStore(make_client(redis_url, max_connections=8), QuotaSettings(), default_catalog())
    await store.load_scripts()
    await store.provisioning.create_contract("C1", "light_start", dt.date(2026, 11, 1), NOW)
    yield store, IdentityStore(store.client)
    await store.close()


async def attach(store: QuotaStore, ref: LineRef, sid: str, check: bool = True) -> AttachResult:
    return await store.attach(AttachRequest(ref, None, sid, "192.0.2.1", NOW, check_identity=check))


async def test_r50_attach_script_gates_voice_lines_on_the_contracts_identity(
    stores: tuple[QuotaStore, IdentityStore],
) -> None:
    store, ids = stores
    voice = await store.provisioning.add_line("C1", "09000000001", "8981000000000000001", "440100000000001",
                                              voice=True, now=NOW)
    result = await attach(store, voice, "s1")
    assert (result.ok, result.reason, result.granted, result.framed_ip) == (False, "identity_unverified", 0, None)
    view = await store.views.contract_view("C1", NOW)
    assert (view.pool, view.lines[0].held, view.lines[0].sessions) == (GB, 0, 0)  # nothing drawn, no session
    # Callers that only exercise the pool may leave the check off (the RADIUS path never does).
    assert (await attach(store, voice, "s0", check=False)).ok

    await ids.set_holder("C1", HOLDER, NOW, 0)
    await ids.record("C1", 1, OK, "operator#0", NOW, "drivers_licence")
    result = await attach(store, voice, "s2")
    assert (result.ok, result.granted) == (True, 0)  # s0 already drew this line's slice
    await ids.revoke("C1", "operator#0", NOW)
    assert (await attach(store, voice, "s2")).reason == "identity_unverified"


async def test_r50_data_lines_never_gated(stores: tuple[QuotaStore, IdentityStore]) -> None:
    store, _ = stores
    data = await store.provisioning.add_line("C1", "09000000002", "8981000000000000002", "440100000000002", now=NOW)
    result = await attach(store, data, "s1")
    assert (result.ok, result.granted) == (True, 10 * MB)


async def test_r51_verification_recorded_only_against_the_holder_it_was_checked_with(
    stores: tuple[QuotaStore, IdentityStore],
) -> None:
    _, ids = stores
    with pytest.raises(IdentityStoreError) as info:
        await ids.record("C1", 0, OK, "operator#0", NOW, "drivers_licence")
    assert info.value.kind == "conflict"  # no holder registered: revision 0 does not exist
    assert await ids.set_holder("C1", HOLDER, NOW, 0) == 1
    assert await ids.set_holder("C1", HOLDER, NOW, 1) == 2
    with pytest.raises(IdentityStoreError) as info:
        await ids.set_holder("C1", HOLDER, NOW, 1)  # a stale revision
    assert info.value.kind == "conflict"
    with pytest.raises(IdentityStoreError) as info:
        await ids.record("C1", 1, OK, "operator#0", NOW, "drivers_licence")  # checked against the old holder
    assert info.value.kind == "conflict"
    assert (await ids.verification("C1")).status == "unverified"
    await ids.record("C1", 2, OK, "operator#0", NOW, "drivers_licence")
    state = await ids.verification("C1")
    assert (state.status, state.at, state.who, state.document_type, state.image_sha256) == (
        "verified", NOW, "operator#0", "drivers_licence", ("ab" * 32,))
    with pytest.raises(IdentityStoreError) as info:
        await ids.record("C1", 2, OK, "operator#0", NOW, "drivers_licence")
    assert info.value.kind == "verified"
    with pytest.raises(IdentityStoreError) as info:
        await ids.set_holder("C9", HOLDER, NOW, 0)
    assert info.value.kind == "notfound"


async def test_r51_history_keeps_the_newest_outcomes_without_personal_data(
    stores: tuple[QuotaStore, IdentityStore],
) -> None:
    _, ids = stores
    await ids.set_holder("C1", HOLDER, NOW, 0)
    refusal = Refusal("name_mismatch", "document.family_name", "the family name differs")
    for i in range(LOG_KEEP + 5):
        await ids.record("C1", 1, refusal, "customer#1", NOW + i, "drivers_licence")
    history = (await ids.verification("C1")).history
    assert len(history) == LOG_KEEP
    assert history[0] == {"at": NOW + LOG_KEEP + 4, "who": "customer#1", "outcome": "refused",
                          "code": "name_mismatch", "rule": "R-51", "field": "document.family_name",
                          "document_type": "drivers_licence"}


def test_r73_identity_keys_share_the_contracts_hash_slot() -> None:
    slots = {key_slot(key.encode()) for key in IdentityKeys("C1").all()}
    assert slots == {key_slot(k.ContractKeys("C1").line("09000000001").encode())}
