"""quota.steady against attach.lua: on states of every kind, a re-authorization answered from reads
alone is exactly the script's reply, and the script, run on the same state, writes nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from quotad.policy.plans import MB
from quotad.quota import lua
from quotad.quota.model import ACCT_INTERIM, ACCT_START, ACCT_STOP, AttachRequest, LineRef
from quotad.quota.runner import session_run
from quotad.quota.store import QuotaStore
from tests.integration.storekit import SLICE, StoreFactory, at, attach, new_line, report

NOW = at(2025, 4, 2, 12)
READS = {"evalsha", "hmget", "hget", "hgetall", "multi", "exec"}


async def compare(store: QuotaStore, req: AttachRequest, sid: str, expected_gen: str) -> lua.AttachReply | None:
    """The steady answer and the script's reply on the same state; the steady answer, if any,
    must be the script's and the script must then write nothing."""
    line = store._keys(req.ref, req.now)
    run = session_run(line, sid)
    clock = store._attach_clock.at(req.now)
    answer = await store._steady(req, line, clock, sid, expected_gen)
    keys: Any = [run, line["session_prefix"] + req.session_id] if req.slot else run
    args = lua.attach_argv(clock, int(req.check_identity), req.imsi or "", store._gateway(req.nas_ip, req.gateway),
                           sid, "gen-new", expected_gen, req.acct_session_id, req.slot, req.session_id)
    await store.client.config_resetstat()
    reply = lua.attach_reply(await store.runner.run("attach", keys, args))
    # CONFIG RESETSTAT itself is listed as `config` (Redis 6.2) or `config|resetstat` (Redis 7, Valkey).
    commands = {name.removeprefix("cmdstat_") for name in await store.client.info("commandstats")
                if name.removeprefix("cmdstat_").split("|")[0] != "config"}
    if answer is not None:
        assert answer == reply
        assert commands <= READS, commands
    return answer


async def generation(store: QuotaStore, ref: LineRef, sid: str) -> str:
    gen = await store.client.hget(store._keys(ref, NOW)["session_prefix"] + sid, "gen")
    return gen.decode() if gen else ""


@pytest.fixture
async def fast_store(make_store: StoreFactory, backend: tuple[str, bool, bool]) -> QuotaStore:
    if not backend[2]:
        pytest.skip("about the pipelining client on one Redis")
    return await make_store()


async def live(store: QuotaStore, plan: str = "light_start", start: dt.date = dt.date(2025, 4, 1)) -> LineRef:
    await store.provisioning.create_contract("C1", plan, start, at(2025, 4, 1))
    ref = await new_line(store, "C1")
    assert (await attach(store, ref, "s1", NOW)).ok
    return ref


def request(ref: LineRef, now: float = NOW + 1, **kw: Any) -> AttachRequest:
    return AttachRequest(**{"ref": ref, "imsi": None, "session_id": "s1", "nas_ip": "192.0.2.1", "now": now,
                            "check_identity": True, **kw})


async def test_a_steady_reauthorization_is_the_scripts_answer(fast_store: QuotaStore) -> None:
    ref = await live(fast_store)
    gen = await generation(fast_store, ref, "s1")
    answer = await compare(fast_store, request(ref), "s1", gen)
    assert answer is not None and answer.same and answer.facts is not None and answer.facts.held == SLICE
    other = await compare(fast_store, request(ref), "s1", "another")  # a note of an earlier session
    assert other is not None and not other.same
    card = (await fast_store.card(ref)).imsi
    # The session was recorded without an IMSI: the script notes it, after which it changes nothing.
    assert await compare(fast_store, request(ref, imsi=card), "s1", gen) is None
    assert await compare(fast_store, request(ref, imsi=card), "s1", gen) is not None
    await report(fast_store, ref, "s1", ACCT_START, 0, NOW + 2)
    assert await compare(fast_store, request(ref, now=NOW + 3, imsi=card), "s1", gen) is not None


@pytest.mark.parametrize("change", [
    "expiry_due", "held_below_slice", "coupon_off", "suspended", "other_card", "stopped", "no_generation",
    "other_gateway", "next_month", "bucket_expires", "no_session", "unknown_line",
])
async def test_anything_to_write_or_refuse_goes_to_the_script(fast_store: QuotaStore, change: str) -> None:
    ref = await live(fast_store, "minimum_start" if change == "bucket_expires" else "light_start")
    gen = await generation(fast_store, ref, "s1")
    req, sid = request(ref), "s1"
    if change == "expiry_due":  # 1/48 of the 3-day session TTL later: the expiry is pushed back
        req = request(ref, now=NOW + 5400)
    elif change == "held_below_slice":
        await report(fast_store, ref, "s1", ACCT_INTERIM, MB, NOW + 1)
    elif change == "coupon_off":
        await fast_store.provisioning.set_coupon(ref, False, NOW)
    elif change == "suspended":
        await fast_store.provisioning.set_status(ref, "suspended", NOW)
    elif change == "other_card":
        req = request(ref, imsi="440109999999999")
    elif change == "stopped":
        await report(fast_store, ref, "s1", ACCT_STOP, 0, NOW + 1)
        req = request(ref, now=NOW + 2)
    elif change == "no_generation":
        await fast_store.client.hdel(fast_store._keys(ref, NOW)["session_prefix"] + "s1", "gen")
    elif change == "other_gateway":
        req = request(ref, nas_ip="192.0.2.2")
    elif change == "next_month":  # May's bundle to grant
        req = request(ref, now=at(2025, 5, 1, 0, 0, 1))
    elif change == "bucket_expires":  # a coupon bought in April expires at the end of July
        await fast_store.provisioning.charge("C1", 1, "op", NOW)
        assert (await attach(fast_store, ref, "s1", at(2025, 7, 31, 23))).ok
        gen = await generation(fast_store, ref, "s1")
        req = request(ref, now=at(2025, 8, 1))
    elif change == "no_session":
        sid = "s2"
        req = request(ref, session_id="s2")
    elif change == "unknown_line":
        req = request(LineRef("C1", "0000"))
        sid = "s1"
    assert await compare(fast_store, req, sid, gen) is None


async def test_a_voice_line_of_an_unverified_holder_goes_to_the_script(fast_store: QuotaStore) -> None:
    await fast_store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await fast_store.provisioning.add_line("C1", "09012345678", "8981000000000000099", "440100000000099",
                                                 voice=True, now=NOW)
    refused = await fast_store.attach(request(ref, now=NOW))
    assert refused.reason == "identity_unverified"
    assert await compare(fast_store, request(ref), "s1", "") is None
    assert await compare(fast_store, request(ref, check_identity=False), "s1", "") is None  # its gen was cleared


async def test_a_contract_not_started_goes_to_the_script(fast_store: QuotaStore) -> None:
    ref = await live(fast_store)
    await fast_store.client.hset(fast_store._keys(ref, NOW)["contract"], "start", "20250403")
    assert await compare(fast_store, request(ref), "s1", await generation(fast_store, ref, "s1")) is None


async def test_a_slots_session_until_it_reports(fast_store: QuotaStore) -> None:
    await fast_store.provisioning.create_contract("C1", "light_start", dt.date(2025, 4, 1), at(2025, 4, 1))
    ref = await new_line(fast_store, "C1")
    first = await fast_store.attach(request(ref, now=NOW, session_id="a1", slot="slot1"))
    assert first.ok and first.session_id == "a1"
    gen = await generation(fast_store, ref, "a1")
    asking = request(ref, session_id="a2", slot="slot1")  # a new id, the slot's latest a1 guessed
    answer = await compare(fast_store, asking, "a1", gen)
    assert answer is not None and answer.session_id == "a1" and answer.same
    assert await compare(fast_store, asking, "a9", gen) is None  # a wrong guess: the script says retry
    assert await compare(fast_store, dataclasses.replace(asking, slot="slot2"), "a1", gen) is None
    await report(fast_store, ref, "a1", ACCT_INTERIM, 0, NOW + 2)  # reported: the next is a new session
    assert await compare(fast_store, request(ref, now=NOW + 3, session_id="a3", slot="slot1"), "a1", gen) is None
