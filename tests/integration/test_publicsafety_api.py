"""The public-safety API (SPEC §6, R-60 … R-65) against a real Redis, through aiohttp's test client."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from quotad.api import routes
from quotad.config import ApiSettings, Config, Secret, TokenSettings
from quotad.policy.plans import default_catalog
from quotad.publicsafety.store import PublicSafetyStore
from quotad.quota.model import QuotaSettings
from quotad.quota.store import QuotaStore
from tests.redis_client import make_client

JST = dt.timezone(dt.timedelta(hours=9))
OP = "operator-token-0123456789abcdef"
CUST = "customer-token-c1-0123456789ab"
TOKENS = (TokenSettings(token=Secret(OP), role="operator"),
          TokenSettings(token=Secret(CUST), role="customer", contract="P1"))
GB = 1_000_000_000


def at(year: int, month: int, day: int, hour: int = 12) -> float:
    return dt.datetime(year, month, day, hour, tzinfo=JST).timestamp()


@dataclass
class Env:
    client: TestClient[web.Request, web.Application]
    store: QuotaStore
    now: float

    def clock(self) -> float:
        return self.now

    async def call(self, method: str, path: str, body: Any = None, token: str = OP) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        return resp.status, await resp.json()

    async def snapshot(self) -> dict[bytes, bytes | None]:
        """Every key and its serialized value: a refused request must change nothing."""
        redis = self.store.client
        return {key: await redis.dump(key) for key in sorted(await redis.keys("*"))}


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    store = QuotaStore(make_client(redis_url, max_connections=8), QuotaSettings(), default_catalog())
    await store.load_scripts()
    app = web.Application()
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    e = Env(client=client, store=store, now=at(2026, 4, 2))
    routes.setup(app, store, Config(api=ApiSettings(tokens=TOKENS)), e.clock)
    await client.start_server()
    yield e
    await client.close()
    await store.close()


def pair_body(pid: str, group: str, n: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": pid, "group_id": group, "call_flat": False, "disaster_priority": "none"}
    for prefix, m in (("d", n), ("k", n + 1)):
        body.update({f"{prefix}_msisdn": f"8170000000{m:02d}", f"{prefix}_iccid": f"89810000{m:02d}",
                     f"{prefix}_imsi": f"44010000{m:02d}", f"{prefix}_sim_type": "multi_ff",
                     f"{prefix}_ipv4": f"203.0.113.{m}", f"{prefix}_ipv6_prefix": f"2001:db8:0:{m:x}::/64"})
    return {**body, **over}


@pytest.fixture
async def tree(env: Env) -> Env:
    """P1 (item mobile) from 2 April 2026: g1 data 3 GB with pair p1 (lines 01, 02), g2 voice 10 GB with p2 (03, 04)."""
    assert (await env.call("POST", "/v1/public-safety/contracts", {"id": "P1", "item": "mobile", "packs": 0}))[0] == 201
    base = "/v1/public-safety/contracts/P1"
    assert (await env.call("POST", f"{base}/groups", {"id": "g1", "kind": "data", "plan": "3GB"}))[0] == 201
    assert (await env.call("POST", f"{base}/groups", {"id": "g2", "kind": "voice", "plan": "10GB"}))[0] == 201
    assert (await env.call("POST", f"{base}/pairs", pair_body("p1", "g1", 1)))[0] == 201
    status, body = await env.call("POST", f"{base}/pairs", pair_body("p2", "g2", 3, call_flat=True))
    assert status == 201, body
    return env


async def test_r60_r61_tree_created_with_pairs_and_fixed_addresses(tree: Env) -> None:
    status, body = await tree.call("GET", "/v1/public-safety/contracts/P1")
    assert status == 200
    assert [(g["id"], g["kind"], g["plan"]) for g in body["groups"]] == [("g1", "data", "3GB"), ("g2", "voice", "10GB")]
    assert [(ln["msisdn"], ln["type"], ln["ipv4"], ln["ipv6_prefix"]) for ln in body["lines"]] == [
        ("817000000001", "D", "203.0.113.1", "2001:db8:0:1::/64"),
        ("817000000002", "K", "203.0.113.2", "2001:db8:0:2::/64"),
        ("817000000003", "D", "203.0.113.3", "2001:db8:0:3::/64"),
        ("817000000004", "K", "203.0.113.4", "2001:db8:0:4::/64"),
    ]
    line = await tree.store.client.hgetall("q:{c:P1}:l:817000000003")
    assert line[b"ps"] == b"1" and line[b"ipv4"] == b"203.0.113.3" and line[b"voice"] == b"1"
    assert await tree.store.find_line("4401000003", None) is not None


async def test_r62_fixed_address_of_another_line_refused_and_nothing_written(tree: Env) -> None:
    before = await tree.snapshot()
    body = pair_body("p3", "g1", 5, k_ipv4="203.0.113.1")
    status, err = await tree.call("POST", "/v1/public-safety/contracts/P1/pairs", body)
    assert (status, err["error"]["field"], err["error"]["rule"]) == (409, "k_ipv4", "R-62")
    assert await tree.snapshot() == before


async def test_r61_pair_of_mismatched_sim_type_refused_naming_field(tree: Env) -> None:
    status, err = await tree.call("POST", "/v1/public-safety/contracts/P1/pairs",
                                  pair_body("p3", "g1", 5, call_flat=True))
    assert (status, err["error"]["field"], err["error"]["rule"]) == (422, "call_flat", "R-65")
    status, err = await tree.call("POST", "/v1/public-safety/contracts/P1/pairs",
                                  pair_body("p3", "g1", 5, d_sim_type="nano"))
    assert (status, err["error"]["field"], err["error"]["rule"]) == (422, "d_sim_type", "R-61")


async def test_r61_number_already_used_refused(tree: Env) -> None:
    before = await tree.snapshot()
    status, err = await tree.call("POST", "/v1/public-safety/contracts/P1/pairs",
                                  pair_body("p3", "g1", 5, d_msisdn="817000000001"))
    assert (status, err["error"]["field"]) == (409, "d_msisdn")
    assert await tree.snapshot() == before


async def test_r64_plan_change_on_31_march_refused_and_nothing_written(tree: Env) -> None:
    tree.now = at(2026, 3, 31)  # the API's clock, not the tree's
    before = await tree.snapshot()
    status, err = await tree.call("PUT", "/v1/public-safety/contracts/P1/groups/g1/plan", {"plan": "30GB"})
    assert (status, err["error"]["field"], err["error"]["rule"]) == (422, "plan", "R-64")
    assert await tree.snapshot() == before


async def test_r64_plan_change_effective_next_month(tree: Env) -> None:
    tree.now = at(2026, 4, 20)
    status, body = await tree.call("PUT", "/v1/public-safety/contracts/P1/groups/g1/plan", {"plan": "30GB"})
    assert status == 200
    g1 = body["contract"]["groups"][0]
    assert (body["effective_month"], g1["plan"], g1["plan_schedule"]) == (
        "2026-05", "3GB", [{"from": "2026-04", "value": "3GB"}, {"from": "2026-05", "value": "30GB"}])


async def test_r64_japan_time_decides_the_last_day(tree: Env) -> None:
    # 30 April 23:30 UTC is already 1 May in Japan: allowed, effective June.
    tree.now = dt.datetime(2026, 4, 30, 23, 30, tzinfo=dt.UTC).timestamp()
    status, body = await tree.call("PUT", "/v1/public-safety/contracts/P1/groups/g2/plan", {"plan": "1GB"})
    assert (status, body["effective_month"]) == (200, "2026-06")
    tree.now = dt.datetime(2026, 4, 30, 14, 0, tzinfo=dt.UTC).timestamp()  # 23:00 on 30 April in Japan
    status, err = await tree.call("PUT", "/v1/public-safety/contracts/P1/groups/g2/plan", {"plan": "1GB"})
    assert (status, err["error"]["rule"]) == (422, "R-64")


async def test_r64_packs_only_for_org_share(tree: Env) -> None:
    status, err = await tree.call("PUT", "/v1/public-safety/contracts/P1/packs", {"packs": 4})
    assert (status, err["error"]["field"], err["error"]["rule"]) == (422, "packs", "R-63")


async def test_r61_line_termination_noticed_10_may_for_20_may_effective_9_june(tree: Env) -> None:
    tree.now = at(2026, 5, 10)
    status, body = await tree.call("POST", "/v1/public-safety/lines/817000000001/termination",
                                   {"requested_date": "2026-05-20"})
    assert status == 200
    ends = {ln["msisdn"]: ln["ends"] for ln in body["lines"]}
    assert (ends["817000000001"], ends["817000000002"], ends["817000000003"]) == ("2026-06-09", "2026-06-30", None)
    assert body["groups"][0]["ends"] == "2026-06-30"
    record = await tree.store.client.hmget("q:{c:P1}:l:817000000002", ["ends"])
    assert record == [b"20260630"]


async def test_r60_parent_termination_cascades_same_day(tree: Env) -> None:
    tree.now = at(2026, 5, 10)
    status, body = await tree.call("POST", "/v1/public-safety/contracts/P1/termination",
                                   {"requested_date": "2026-07-01"})
    assert status == 200
    assert {body["ends"]} | {g["ends"] for g in body["groups"]} | {ln["ends"] for ln in body["lines"]} == {"2026-07-01"}


async def test_r60_group_termination_ends_its_lines(tree: Env) -> None:
    tree.now = at(2026, 5, 10)
    status, body = await tree.call("POST", "/v1/public-safety/contracts/P1/groups/g2/termination",
                                   {"requested_date": "2026-05-10"})
    assert status == 200
    assert {ln["msisdn"]: ln["ends"] for ln in body["lines"]} == {
        "817000000001": None, "817000000002": None, "817000000003": "2026-06-09", "817000000004": "2026-06-09"}


async def test_r65_card_reissue_moves_the_index_and_bills(tree: Env) -> None:
    status, _ = await tree.call("POST", "/v1/public-safety/lines/817000000001/card",
                                   {"reason": "reissue", "iccid": "8981009901", "imsi": "4401009901",
                                    "sim_type": "multi_ff"})
    assert status == 200
    assert await tree.store.client.get("q:imsi:4401009901") == b"P1\t817000000001"
    assert await tree.store.client.get("q:imsi:4401000001") is None
    status, st = await tree.call("GET", "/v1/contracts/P1/statements/2026-04")
    assert status == 200
    assert [(i["code"], i["quantity"], i["amount_yen"]) for i in st["items"]] == [
        ("one_off", 4, 6000), ("plan", 1, 1650), ("plan", 1, 2500), ("call_flat", 2, 2160), ("reissue", 1, 1500)]
    assert st["total_yen"] == 6000 + 1650 + 2500 + 2160 + 1500


async def test_r65_options_disaster_priority_on_one_line(tree: Env) -> None:
    status, err = await tree.call("PUT", "/v1/public-safety/contracts/P1/pairs/p2/options",
                                  {"call_flat": True, "disaster_priority": "both"})
    assert (status, err["error"]["field"]) == (422, "disaster_priority")
    status, body = await tree.call("PUT", "/v1/public-safety/contracts/P1/pairs/p2/options",
                                   {"call_flat": True, "disaster_priority": "K"})
    assert (status, body["contract"]["pairs"][1]["disaster_priority"]) == (200, "K")


async def test_r65_statement_overage_of_groups_added_up_600_yen(tree: Env) -> None:
    # 0.2 GB over in g1 (3 GB) and 0.9 GB over in g2 (10 GB), in May: 1.1 GB → 2 GB → 600 yen.
    await tree.store.client.hset("q:{c:P1}:psu:202605", mapping={"g:g1": 3 * GB + 200_000_000,
                                                                 "g:g2": 10 * GB + 900_000_000})
    status, st = await tree.call("GET", "/v1/contracts/P1/statements/2026-05")
    assert status == 200
    assert [(i["code"], i["amount_yen"]) for i in st["items"]] == [
        ("plan", 1650), ("plan", 2500), ("call_flat", 2160), ("overage", 600)]
    assert (st["excess_bytes"], st["overage_gb"], st["total_yen"]) == (1_100_000_000, 2, 6910)
    status, usage = await tree.call("GET", "/v1/public-safety/contracts/P1/usage/2026-05")
    assert [(g["group_id"], g["excess_bytes"]) for g in usage["groups"]] == [("g1", 200_000_000), ("g2", 900_000_000)]


async def test_r72_bad_month_and_unknown_contract(tree: Env) -> None:
    status, err = await tree.call("GET", "/v1/contracts/P1/statements/2026-13")
    assert (status, err["error"]["field"]) == (400, "month")
    status, err = await tree.call("GET", "/v1/contracts/NOPE/statements/2026-05")
    assert (status, err["error"]["field"]) == (404, "contract_id")


async def test_public_safety_routes_are_operator_only(tree: Env) -> None:
    status, err = await tree.call("GET", "/v1/contracts/P1/statements/2026-05", token=CUST)
    assert (status, err["error"]["code"]) == (403, "forbidden")


async def test_r60_id_taken_by_a_consumer_contract_refused(env: Env) -> None:
    await env.store.provisioning.create_contract("C9", "light_start", dt.date(2026, 4, 1), env.now)
    status, err = await env.call("POST", "/v1/public-safety/contracts", {"id": "C9", "item": "mobile", "packs": 0})
    assert (status, err["error"]["field"]) == (409, "id")


async def test_store_tree_round_trips(tree: Env) -> None:
    parent = await PublicSafetyStore(tree.store.client).load("P1")
    assert [p.id for p in parent.pairs] == ["p1", "p2"] and parent.pairs[1].call_flat.at("2026-04") is True


async def test_r60_concurrent_changes_all_land(tree: Env) -> None:
    """Optimistic writes: racing changes to one tree are retried on the fresh tree, none is lost."""
    base = "/v1/public-safety/contracts/P1/groups"
    results = await asyncio.gather(*(tree.call("POST", base, {"id": f"x{i}", "kind": "data", "plan": "1GB"})
                                     for i in range(6)))
    assert [status for status, _ in results] == [201] * 6
    _, body = await tree.call("GET", "/v1/public-safety/contracts/P1")
    assert sorted(g["id"] for g in body["groups"]) == ["g1", "g2", "x0", "x1", "x2", "x3", "x4", "x5"]
    assert await tree.store.client.hget("q:{c:P1}:ps", "v") == b"11"  # 5 writes before, 6 now


async def test_r61_card_of_another_contract_refused_and_nothing_written(tree: Env) -> None:
    new = {"id": "P2", "item": "org_share", "packs": 2}
    assert (await tree.call("POST", "/v1/public-safety/contracts", new))[0] == 201
    assert (await tree.call("POST", "/v1/public-safety/contracts/P2/groups",
                            {"id": "g1", "kind": "data", "plan": "org_share"}))[0] == 201
    before = await tree.snapshot()
    status, err = await tree.call("POST", "/v1/public-safety/contracts/P2/pairs",
                                  pair_body("p1", "g1", 7, k_imsi="4401000001"))  # line 01's IMSI, in P1
    assert (status, err["error"]["field"]) == (409, "k_imsi")
    assert await tree.snapshot() == before


async def test_r64_org_share_pack_change_from_next_month(tree: Env) -> None:
    new = {"id": "P2", "item": "org_share", "packs": 2}
    assert (await tree.call("POST", "/v1/public-safety/contracts", new))[0] == 201
    tree.now = at(2026, 4, 29)
    status, body = await tree.call("PUT", "/v1/public-safety/contracts/P2/packs", {"packs": 6})
    assert (status, body["effective_month"], body["contract"]["packs"]) == (200, "2026-05", 2)
    tree.now = at(2026, 5, 1)
    _, body = await tree.call("GET", "/v1/public-safety/contracts/P2")
    assert body["packs"] == 6
