"""The HTTP API (SPEC §5: R-30 … R-36, R-11, R-21, R-72) against a real Redis, through aiohttp's test client."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from quotad.api import routes
from quotad.config import ApiSettings, Config, Secret, TokenSettings
from quotad.metrics import REGISTRY
from quotad.policy.plans import GB, MB, default_catalog
from quotad.quota.model import ACCT_INTERIM, AccountingReport, LineRef, QuotaSettings
from quotad.quota.store import QuotaStore
from tests.redis_client import make_client

JST = dt.timezone(dt.timedelta(hours=9))
OP = "operator-token-0123456789abcdef"
CUST1 = "customer-token-c1-0123456789ab"
CUST2 = "customer-token-c2-0123456789ab"
TOKENS = (
    TokenSettings(token=Secret(OP), role="operator"),
    TokenSettings(token=Secret(CUST1), role="customer", contract="C1"),
    TokenSettings(token=Secret(CUST2), role="customer", contract="C2"),
)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Epoch of a Japan wall-clock time."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST).timestamp()


@dataclass
class Env:
    client: TestClient[web.Request, web.Application]
    store: QuotaStore
    now: float
    events: list[tuple[LineRef, str]] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def hook(self, ref: LineRef, event: str) -> None:
        self.events.append((ref, event))

    async def call(self, method: str, path: str, token: str | None = OP, body: Any = None,
                   data: bytes | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, path, json=body, data=data, headers=headers)
        return resp.status, await resp.json()


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    store = QuotaStore(make_client(redis_url, max_connections=8), QuotaSettings(), default_catalog())
    await store.load_scripts()
    config = Config(api=ApiSettings(tokens=TOKENS))
    app = web.Application()
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    e = Env(client=client, store=store, now=at(2024, 6, 15, 12))
    routes.setup(app, store, config, e.clock, e.hook)
    await client.start_server()
    yield e
    await client.close()
    await store.close()


def line_body(n: int, **over: Any) -> dict[str, Any]:
    body = {"msisdn": f"0901111000{n}", "iccid": f"898100000000000000{n}", "imsi": f"44010000000000{n}",
            "card_type": "nano", "voice": False}
    return {**body, **over}


@pytest.fixture
async def seeded(env: Env) -> Env:
    """C1: family_share with lines 1 and 2; C2: light_start with line 3 — all made through the API."""
    assert (await env.call("POST", "/v1/contracts", body={"id": "C1", "plan": "family_share",
                                                          "start_date": "2024-06-01"}))[0] == 201
    assert (await env.call("POST", "/v1/contracts", body={"id": "C2", "plan": "light_start",
                                                          "start_date": "2024-06-01"}))[0] == 201
    for cid, n in (("C1", 1), ("C1", 2), ("C2", 3)):
        assert (await env.call("POST", f"/v1/contracts/{cid}/lines", body=line_body(n)))[0] == 201
    return env


def error(status_body: tuple[int, Any]) -> tuple[int, str, str | None, str | None]:
    status, body = status_body
    e = body["error"]
    return status, e["code"], e["field"], e["rule"]


# -- contracts and lines --------------------------------------------------------------------------


async def test_r10_create_contract_prorates_bundle_and_reads_back(env: Env) -> None:
    resp = await env.client.post("/v1/contracts", json={"id": "C9", "plan": "light_start", "start_date": "2024-06-15"},
                                 headers={"Authorization": f"Bearer {OP}"})
    assert resp.status == 201 and resp.headers["Location"] == "/v1/contracts/C9"
    size = 533 * MB  # 1 GB x 16/30 days, down to a whole MB
    expected = {"id": "C9", "plan": "light_start", "start_date": "2024-06-15", "pool": size, "lines": [],
                "buckets": [{"id": (await resp.json())["buckets"][0]["id"], "kind": "bundle", "size": size,
                             "left": size, "expires_at": "2024-08-01T00:00:00+09:00"}]}
    assert await resp.json() == expected
    assert await env.call("GET", "/v1/contracts/C9") == (200, expected)


async def test_r35_line_by_msisdn_and_iccid(seeded: Env) -> None:
    expected = {"contract_id": "C1", "msisdn": "09011110001", "iccid": "8981000000000000001",
                "imsi": "440100000000001", "card_type": "nano", "voice": False, "status": "active",
                "coupon_on": True, "held": 0, "speed": None, "overrun": 0, "sessions": 0}
    assert await seeded.call("GET", "/v1/lines/09011110001") == (200, expected)
    assert await seeded.call("GET", "/v1/lines/by-iccid/8981000000000000001") == (200, expected)
    status, view = await seeded.call("GET", "/v1/contracts/C1")
    assert status == 200 and [x["msisdn"] for x in view["lines"]] == ["09011110001", "09011110002"]
    assert view["lines"][0] == expected and view["pool"] == GB


async def test_add_line_answers_201_with_location(env: Env) -> None:
    await env.call("POST", "/v1/contracts", body={"id": "C1", "plan": "minimum_start", "start_date": "2024-06-01"})
    resp = await env.client.post("/v1/contracts/C1/lines", json=line_body(1, card_type="esim", voice=True),
                                 headers={"Authorization": f"Bearer {OP}"})
    assert resp.status == 201 and resp.headers["Location"] == "/v1/lines/09011110001"
    body = await resp.json()
    assert (body["card_type"], body["voice"], body["contract_id"]) == ("esim", True, "C1")


# -- charges (R-11, R-34, R-35) -------------------------------------------------------------------


async def test_r11_charge_returns_bucket_and_notifies_every_line(seeded: Env) -> None:
    status, bucket = await seeded.call("POST", "/v1/contracts/C1/charges", body={"units": 2})
    assert status == 201
    assert bucket == {"id": bucket["id"], "kind": "coupon", "size": 200 * MB, "left": 200 * MB,
                      "expires_at": "2024-10-01T00:00:00+09:00"}  # bought in June: usable to end of September
    assert seeded.events == [(LineRef("C1", "09011110001"), "charge"), (LineRef("C1", "09011110002"), "charge")]
    view = (await seeded.call("GET", "/v1/contracts/C1"))[1]
    assert view["pool"] == GB + 200 * MB and bucket in view["buckets"]


async def test_r11_31st_coupon_of_the_month_refused_whole(seeded: Env) -> None:
    assert (await seeded.call("POST", "/v1/contracts/C1/charges", body={"units": 29}))[0] == 201
    assert error(await seeded.call("POST", "/v1/contracts/C1/charges", body={"units": 2})) == (
        422, "limit_exceeded", "units", "R-11")
    assert (await seeded.call("POST", "/v1/contracts/C1/charges", body={"units": 1}))[0] == 201
    assert error(await seeded.call("POST", "/v1/contracts/C1/charges", body={"units": 1})) == (
        422, "limit_exceeded", "units", "R-11")
    assert error(await seeded.call("POST", "/v1/contracts/C2/charges", body={"units": 31})) == (
        422, "limit_exceeded", "units", "R-11")
    history = (await seeded.call("GET", "/v1/contracts/C1/charges"))[1]["charges"]
    assert [c["units"] for c in history] == [29, 1]


async def test_r35_charge_history_last_3_months_without_bundles(seeded: Env) -> None:
    """R-35: purchases of the last 3 months, oldest first; R-11: who is the role and token index, not the token."""
    for when, units, token in ((at(2024, 3, 14, 12), 1, OP), (at(2024, 3, 15, 13), 2, CUST1),
                               (at(2024, 6, 15, 11), 3, OP)):
        seeded.now = when
        assert (await seeded.call("POST", "/v1/contracts/C1/charges", token=token, body={"units": units}))[0] == 201
    seeded.now = at(2024, 6, 15, 12)
    status, body = await seeded.call("GET", "/v1/contracts/C1/charges", token=CUST1)
    assert status == 200
    assert body["contract_id"] == "C1" and body["since"] == "2024-03-15T12:00:00+09:00"
    assert [{k: c[k] for k in ("at", "units", "bytes", "who")} for c in body["charges"]] == [
        {"at": "2024-03-15T13:00:00+09:00", "units": 2, "bytes": 200 * MB, "who": "customer#1"},
        {"at": "2024-06-15T11:00:00+09:00", "units": 3, "bytes": 300 * MB, "who": "operator#0"},
    ]
    # The pool holds bundles (June's, and the pro-rated start bundle), none of them in the history.
    view = (await seeded.call("GET", "/v1/contracts/C1"))[1]
    bundles = {b["id"] for b in view["buckets"] if b["kind"] == "bundle"}
    assert bundles and not bundles & {c["bucket_id"] for c in body["charges"]}
    assert (await seeded.call("GET", "/v1/contracts/C2/charges"))[1]["charges"] == []


# -- coupon switch, suspend / resume (R-21, R-30, R-31) -------------------------------------------


async def test_r21_r31_coupon_switch_by_customer(seeded: Env) -> None:
    status, line = await seeded.call("PUT", "/v1/lines/09011110002/coupon", token=CUST1, body={"on": False})
    assert status == 200 and line["coupon_on"] is False
    assert seeded.events == [(LineRef("C1", "09011110002"), "coupon")]
    assert (await seeded.call("PUT", "/v1/lines/09011110002/coupon", body={"on": True}))[1]["coupon_on"] is True
    assert (await seeded.call("GET", "/v1/lines/09011110001"))[1]["coupon_on"] is True


@pytest.mark.parametrize("by", ["/v1/lines/09011110003", "/v1/lines/by-iccid/8981000000000000003"])
async def test_r30_suspend_and_resume(seeded: Env, by: str) -> None:
    status, line = await seeded.call("POST", f"{by}/suspend")
    assert (status, line["status"], line["msisdn"]) == (200, "suspended", "09011110003")
    assert (await seeded.call("GET", "/v1/lines/09011110003"))[1]["status"] == "suspended"
    status, line = await seeded.call("POST", f"{by}/resume")
    assert (status, line["status"]) == (200, "active")
    ref = LineRef("C2", "09011110003")
    assert seeded.events == [(ref, "suspend"), (ref, "resume")]


async def test_r30_resume_of_terminated_line_is_a_conflict(seeded: Env) -> None:
    await seeded.store.provisioning.set_status(LineRef("C2", "09011110003"), "terminated", seeded.now)
    assert error(await seeded.call("POST", "/v1/lines/09011110003/resume")) == (409, "conflict", "status", "R-30")


# -- card change and replacement (R-32, R-33) -----------------------------------------------------

LINE3 = LineRef("C2", "09011110003")


def card_body(n: int, reason: str = "type-change", **over: Any) -> dict[str, Any]:
    return {"iccid": f"89810000000000001{n}", "imsi": f"4401000000001{n}", "card_type": "micro", "reason": reason,
            **over}


async def test_r32_type_change_pending_then_active(seeded: Env) -> None:
    """R-32: the new card is pending (the old card works, the line stays active) until activated;
    then the line has the new card, the old ICCID is gone, held data and switch are the line's."""
    await seeded.store.provisioning.set_coupon(LINE3, False, seeded.now)
    status, card = await seeded.call("POST", "/v1/lines/09011110003/cards", body=card_body(1))
    assert status == 201
    assert {k: card[k] for k in ("msisdn", "iccid", "imsi", "card_type", "reason", "state", "replaced")} == {
        "msisdn": "09011110003", "iccid": "898100000000000011", "imsi": "44010000000011", "card_type": "micro",
        "reason": "type-change", "state": "pending", "replaced": None}
    assert (card["line"]["iccid"], card["line"]["status"]) == ("8981000000000000003", "active")
    assert seeded.events == []
    assert error(await seeded.call("GET", "/v1/lines/by-iccid/898100000000000011")) == (
        404, "not_found", "iccid", "R-35")  # not the line's card yet

    status, card = await seeded.call("POST", "/v1/lines/09011110003/cards/898100000000000011/activate")
    assert (status, card["state"], card["reason"]) == (200, "active", "type-change")
    assert card["replaced"] == {"iccid": "8981000000000000003", "imsi": "440100000000003", "card_type": "nano"}
    line = card["line"]
    assert (line["iccid"], line["imsi"], line["card_type"], line["status"], line["coupon_on"]) == (
        "898100000000000011", "44010000000011", "micro", "active", False)
    assert seeded.events == [(LINE3, "card")]
    assert (await seeded.call("GET", "/v1/lines/by-iccid/8981000000000000003"))[0] == 404
    # the replaced card's ICCID is never given to another line.
    reused = line_body(7, iccid="8981000000000000003")
    assert error(await seeded.call("POST", "/v1/contracts/C1/lines", body=reused)) == (409, "conflict", "iccid", "R-2")
    assert (await seeded.call("GET", "/v1/lines/by-iccid/898100000000000011"))[1]["msisdn"] == "09011110003"
    # Activating it again changes nothing and drops nothing.
    status, card = await seeded.call("POST", "/v1/lines/09011110003/cards/898100000000000011/activate")
    assert (status, card["replaced"], card["reason"]) == (200, None, None)
    assert seeded.events == [(LINE3, "card")]


@pytest.mark.parametrize("reason", ["lost", "broken"])
async def test_r33_lost_card_line_suspended_until_new_card_is_activated(seeded: Env, reason: str) -> None:
    """R-33: reporting a lost or broken card suspends the line (its sessions dropped); it cannot be
    resumed but by activating the replacement, which resumes it."""
    status, card = await seeded.call("POST", "/v1/lines/09011110003/cards", body=card_body(2, reason))
    assert (status, card["state"], card["line"]["status"]) == (201, "pending", "suspended")
    assert seeded.events == [(LINE3, "suspend")]
    assert error(await seeded.call("POST", "/v1/lines/09011110003/resume")) == (409, "conflict", "status", "R-33")
    status, card = await seeded.call("POST", "/v1/lines/09011110003/cards/898100000000000012/activate")
    assert (status, card["line"]["status"], card["line"]["iccid"], card["reason"]) == (
        200, "active", "898100000000000012", reason)
    assert seeded.events == [(LINE3, "suspend"), (LINE3, "card")]


@pytest.mark.parametrize("field", ["iccid", "imsi"])
async def test_r32_new_card_with_an_identifier_in_use_is_409_nothing_written(seeded: Env, field: str) -> None:
    """R-32 / R-2: a new card whose ICCID or IMSI belongs to another line is refused whole."""
    taken = {"iccid": "8981000000000000001", "imsi": "440100000000001"}[field]
    body = card_body(3, "lost", **{field: taken})
    assert error(await seeded.call("POST", "/v1/lines/09011110003/cards", body=body)) == (409, "conflict", field, "R-2")
    line = (await seeded.call("GET", "/v1/lines/09011110003"))[1]
    assert (line["status"], line["iccid"]) == ("active", "8981000000000000003")
    assert seeded.events == []
    other = "imsi" if field == "iccid" else "iccid"
    # The refused request's other identifier was released: a card with it goes in.
    assert (await seeded.call("POST", "/v1/lines/09011110003/cards",
                              body=card_body(3, **{other: body[other]})))[0] == 201


async def test_r32_one_pending_card_at_a_time(seeded: Env) -> None:
    assert (await seeded.call("POST", "/v1/lines/09011110003/cards", body=card_body(4)))[0] == 201
    assert error(await seeded.call("POST", "/v1/lines/09011110003/cards", body=card_body(5))) == (
        409, "conflict", "iccid", "R-32")
    assert (await seeded.call("GET", "/v1/lines/by-iccid/898100000000000015"))[0] == 404
    assert error(await seeded.call("POST", "/v1/lines/09011110003/cards/898100000000000015/activate")) == (
        404, "not_found", "iccid", "R-32")
    assert error(await seeded.call("POST", "/v1/lines/09011110001/cards/898100000000000014/activate")) == (
        404, "not_found", "iccid", "R-32")


async def test_r32_card_on_terminated_line_is_409(seeded: Env) -> None:
    await seeded.store.provisioning.set_status(LINE3, "terminated", seeded.now)
    assert error(await seeded.call("POST", "/v1/lines/09011110003/cards", body=card_body(6))) == (
        409, "conflict", "status", "R-32")
    assert (await seeded.call("GET", "/v1/lines/by-iccid/898100000000000016"))[0] == 404


@pytest.mark.parametrize(("body", "expected"), [
    (card_body(7, "stolen"), (422, "invalid_value", "reason", "R-32")),
    (card_body(7, card_type="mini"), (422, "invalid_value", "card_type", "R-32")),
    (card_body(7, iccid="89|81"), (400, "invalid_id", "iccid", None)),
    ({k: v for k, v in card_body(7).items() if k != "imsi"}, (400, "missing_field", "imsi", "R-32")),
])
async def test_r32_bad_card_body_is_named(seeded: Env, body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert error(await seeded.call("POST", "/v1/lines/09011110003/cards", body=body)) == expected
    assert (await seeded.call("GET", "/v1/lines/09011110003"))[1]["status"] == "active"


# -- usage (R-35) ---------------------------------------------------------------------------------


async def test_r35_usage_3_days_before_today_high_and_low_apart(seeded: Env) -> None:
    store, ref = seeded.store, LineRef("C2", "09011110003")

    async def report(octets: int, when: float) -> None:
        await store.account(AccountingReport(ref, "s1", ACCT_INTERIM, octets, "127.0.0.1", when))

    await report(30 * MB, at(2024, 6, 13, 12))  # high speed
    await store.set_speed(ref, "", "low")
    await report(45 * MB, at(2024, 6, 14, 12))  # +15 MB at low speed
    await report(52 * MB, at(2024, 6, 15, 9))  # today: apart from the 3 days, as running figures
    status, body = await seeded.call("GET", "/v1/lines/09011110003/usage", token=CUST2)
    assert status == 200
    assert body == {"contract_id": "C2", "msisdn": "09011110003",
                    "today": {"date": "2024-06-15", "high": 0, "low": 7 * MB, "as_of": "2024-06-15T12:00:00+09:00"},
                    "days": [
                        {"date": "2024-06-14", "high": 0, "low": 15 * MB},
                        {"date": "2024-06-13", "high": 30 * MB, "low": 0},
                        {"date": "2024-06-12", "high": 0, "low": 0},
                    ]}


# -- access (R-30 … R-36: operators everything, customers their own contract) ---------------------

SAMPLE = {"units": 1}
ALL_CALLS = [
    ("POST", "/v1/contracts", {"id": "C7", "plan": "light_start", "start_date": "2024-06-01"}),
    ("GET", "/v1/contracts/C1", None),
    ("POST", "/v1/contracts/C1/lines", line_body(7)),
    ("POST", "/v1/contracts/C1/charges", SAMPLE),
    ("GET", "/v1/contracts/C1/charges", None),
    ("GET", "/v1/lines/09011110001", None),
    ("GET", "/v1/lines/by-iccid/8981000000000000001", None),
    ("PUT", "/v1/lines/09011110001/coupon", {"on": False}),
    ("POST", "/v1/lines/09011110001/suspend", None),
    ("POST", "/v1/lines/09011110001/resume", None),
    ("POST", "/v1/lines/by-iccid/8981000000000000001/suspend", None),
    ("POST", "/v1/lines/by-iccid/8981000000000000001/resume", None),
    ("GET", "/v1/lines/09011110001/usage", None),
    ("POST", "/v1/lines/09011110001/cards", {"iccid": "8981000000000000071", "imsi": "440100000000071",
                                             "card_type": "micro", "reason": "type-change"}),
    ("POST", "/v1/lines/09011110001/cards/8981000000000000071/activate", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ALL_CALLS)
async def test_no_token_or_unknown_token_is_401_with_bearer_challenge(
    seeded: Env, method: str, path: str, body: Any
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token-0123456789"}, {"Authorization": f"Basic {OP}"},
                    {"Authorization": f"Bearer {OP}x"}):
        resp = await seeded.client.request(method, path, json=body, headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="quotad"')
        assert (await resp.json())["error"]["code"] == "unauthorized"
    assert seeded.events == []


@pytest.mark.parametrize(("method", "path", "body"), [c for c in ALL_CALLS if c[0] == "GET" or c[1].endswith(
    ("charges", "coupon"))])
async def test_customer_on_another_contract_gets_404_like_a_missing_id(
    seeded: Env, method: str, path: str, body: Any
) -> None:
    """A customer of C2 sees C1's contract and lines exactly as if they did not exist."""
    status, resp = await seeded.call(method, path, token=CUST2, body=body)
    assert status == 404 and resp["error"]["code"] == "not_found"
    missing = path.replace("C1", "C0").replace("09011110001", "09000000000").replace(
        "8981000000000000001", "8981000000000000000")
    status, gone = await seeded.call(method, missing, token=OP, body=body)
    assert status == 404
    assert {k: v for k, v in gone["error"].items() if k != "message"} == {
        k: v for k, v in resp["error"].items() if k != "message"}
    assert gone["error"]["message"].replace("C0", "C1").replace("09000000000", "09011110001").replace(
        "8981000000000000000", "8981000000000000001") == resp["error"]["message"]
    assert seeded.events == []


@pytest.mark.parametrize(("method", "path", "body"), [c for c in ALL_CALLS if c[0] == "POST" and not c[1].endswith(
    "charges")])
async def test_customer_on_operator_route_is_403(seeded: Env, method: str, path: str, body: Any) -> None:
    """R-30 suspend/resume and provisioning are operator operations, even on the customer's own contract."""
    assert error(await seeded.call(method, path, token=CUST1, body=body)) == (403, "forbidden", None, None)
    assert (await seeded.call("GET", "/v1/lines/09011110001"))[1]["status"] == "active"


async def test_customer_reads_and_charges_own_contract(seeded: Env) -> None:
    assert (await seeded.call("GET", "/v1/contracts/C1", token=CUST1))[0] == 200
    assert (await seeded.call("GET", "/v1/lines/by-iccid/8981000000000000002", token=CUST1))[0] == 200
    assert (await seeded.call("GET", "/v1/contracts/C1/charges", token=CUST1))[0] == 200
    assert (await seeded.call("POST", "/v1/contracts/C1/charges", token=CUST1, body={"units": 1}))[0] == 201


async def test_tokens_never_in_responses_or_logs(seeded: Env, capsys: pytest.CaptureFixture[str]) -> None:
    for token in (OP, CUST1, CUST2, "wrong-token-0123456789abcdef"):
        for method, path, body in ALL_CALLS:
            resp = await seeded.client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
            text = await resp.text() + str(resp.headers)
            assert OP not in text and CUST1 not in text and CUST2 not in text and "wrong-token" not in text
    captured = capsys.readouterr()
    for token in (OP, CUST1, CUST2, "wrong-token"):
        assert token not in captured.out + captured.err


# -- bad input (R-72) -----------------------------------------------------------------------------

NEW_C = {"id": "C5", "plan": "light_start", "start_date": "2024-06-01"}


@pytest.mark.parametrize(("data", "code"), [
    (b"{not json", "malformed_json"), (b"", "malformed_json"), (b"\xff\xfe", "malformed_json"),
    (b"[" * 5000 + b"]" * 5000, "malformed_json"), (b"1" * 5000, "malformed_json"),
    (b"[]", "not_an_object"), (b'"x"', "not_an_object"), (b"null", "not_an_object"),
])
async def test_malformed_body_is_400(seeded: Env, data: bytes, code: str) -> None:
    for path in ("/v1/contracts", "/v1/contracts/C1/lines", "/v1/contracts/C1/charges"):
        assert error(await seeded.call("POST", path, data=data)) == (400, code, None, None)
    assert error(await seeded.call("PUT", "/v1/lines/09011110001/coupon", data=data)) == (400, code, None, None)


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/v1/contracts", {"plan": "light_start", "start_date": "2024-06-01"}, (400, "missing_field", "id", None)),
    ("/v1/contracts", {**NEW_C, "extra": 1}, (400, "unknown_field", "extra", None)),
    ("/v1/contracts", {**NEW_C, "id": 5}, (400, "wrong_type", "id", None)),
    ("/v1/contracts", {**NEW_C, "plan": "gold"}, (422, "unknown_plan", "plan", "§3")),
    ("/v1/contracts", {**NEW_C, "start_date": "2024-02-30"}, (400, "invalid_date", "start_date", None)),
    ("/v1/contracts", {**NEW_C, "start_date": "20240601"}, (400, "invalid_date", "start_date", None)),
    ("/v1/contracts", {**NEW_C, "id": "C{1}"}, (400, "invalid_id", "id", None)),
    ("/v1/contracts", {**NEW_C, "id": "C" * 65}, (400, "invalid_id", "id", None)),
    ("/v1/contracts", {**NEW_C, "id": ""}, (400, "invalid_id", "id", None)),
    ("/v1/contracts", {**NEW_C, "id": "C1"}, (409, "conflict", "contract_id", None)),
    ("/v1/contracts/C2/lines", {**line_body(8), "voice": 1}, (400, "wrong_type", "voice", None)),
    ("/v1/contracts/C2/lines", {**line_body(8), "card_type": "mini"}, (422, "invalid_value", "card_type", "R-32")),
    ("/v1/contracts/C2/lines", {**line_body(8), "msisdn": "090 1111"}, (400, "invalid_id", "msisdn", None)),
    ("/v1/contracts/C2/lines", {**line_body(8), "imsi": "4401\t0"}, (400, "invalid_id", "imsi", None)),
    ("/v1/contracts/C2/lines", {k: v for k, v in line_body(8).items() if k != "iccid"},
     (400, "missing_field", "iccid", None)),
    ("/v1/contracts/C1/charges", {"units": True}, (400, "wrong_type", "units", "R-11")),
    ("/v1/contracts/C1/charges", {"units": "1"}, (400, "wrong_type", "units", "R-11")),
    ("/v1/contracts/C1/charges", {"units": 1.0}, (400, "wrong_type", "units", "R-11")),
    ("/v1/contracts/C1/charges", {"units": 0}, (422, "invalid_value", "units", "R-11")),
    ("/v1/contracts/C1/charges", {"units": -3}, (422, "invalid_value", "units", "R-11")),
    ("/v1/contracts/C1/charges", {"units": 10**40}, (422, "limit_exceeded", "units", "R-11")),
    ("/v1/contracts/C1/charges", {}, (400, "missing_field", "units", "R-11")),
    ("/v1/contracts/C1/charges", {"units": 1, "who": "me"}, (400, "unknown_field", "who", None)),
])
async def test_bad_field_is_named(seeded: Env, path: str, body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    before = (await seeded.call("GET", "/v1/contracts/C1"))[1]
    assert error(await seeded.call("POST", path, body=body)) == expected
    assert (await seeded.call("GET", "/v1/contracts/C1"))[1] == before


async def test_bad_coupon_body_is_named(seeded: Env) -> None:
    path = "/v1/lines/09011110001/coupon"
    assert error(await seeded.call("PUT", path, body={"on": 0})) == (400, "wrong_type", "on", "R-21")
    assert error(await seeded.call("PUT", path, body={"on": "false"})) == (400, "wrong_type", "on", "R-21")
    assert error(await seeded.call("PUT", path, body={})) == (400, "missing_field", "on", "R-21")
    assert (await seeded.call("GET", "/v1/lines/09011110001"))[1]["coupon_on"] is True


@pytest.mark.parametrize("field", ["msisdn", "iccid", "imsi"])
async def test_r2_duplicate_identifier_is_409_and_nothing_left_claimed(seeded: Env, field: str) -> None:
    body = line_body(9, **{field: line_body(3)[field]})  # clashes with C2's line
    assert error(await seeded.call("POST", "/v1/contracts/C1/lines", body=body)) == (409, "conflict", field, "R-2")
    view = (await seeded.call("GET", "/v1/contracts/C1"))[1]
    assert [x["msisdn"] for x in view["lines"]] == ["09011110001", "09011110002"]
    assert (await seeded.call("GET", "/v1/lines/by-iccid/8981000000000000009"))[0] == 404
    # The refused request's other identifiers were released: the same line with a fresh value goes in.
    assert (await seeded.call("POST", "/v1/contracts/C1/lines", body=line_body(9)))[0] == 201
    assert (await seeded.call("GET", "/v1/lines/09011110003"))[1]["contract_id"] == "C2"


async def test_plan_line_limit_4th_line_on_family_share(seeded: Env) -> None:
    """SPEC §3: family_share has up to 3 SIMs."""
    assert (await seeded.call("POST", "/v1/contracts/C1/lines", body=line_body(4)))[0] == 201
    assert error(await seeded.call("POST", "/v1/contracts/C1/lines", body=line_body(5))) == (
        422, "limit_exceeded", "msisdn", "§3")
    assert (await seeded.call("GET", "/v1/lines/09011110005"))[0] == 404
    assert (await seeded.call("POST", "/v1/contracts/C9/lines", body=line_body(5)))[0] == 404


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/v1/contracts/NOPE", None, "contract_id"),
    ("POST", "/v1/contracts/NOPE/lines", line_body(6), "contract_id"),
    ("POST", "/v1/contracts/NOPE/charges", {"units": 1}, "contract_id"),
    ("GET", "/v1/contracts/NOPE/charges", None, "contract_id"),
    ("GET", "/v1/lines/09099999999", None, "msisdn"),
    ("GET", "/v1/lines/by-iccid/899", None, "iccid"),
    ("PUT", "/v1/lines/09099999999/coupon", {"on": True}, "msisdn"),
    ("POST", "/v1/lines/09099999999/suspend", None, "msisdn"),
    ("POST", "/v1/lines/by-iccid/899/resume", None, "iccid"),
    ("GET", "/v1/lines/09099999999/usage", None, "msisdn"),
])
async def test_unknown_contract_or_line_is_404(seeded: Env, method: str, path: str, body: Any, field: str) -> None:
    assert error(await seeded.call(method, path, body=body)) == (404, "not_found", field, "R-35")
    assert seeded.events == []


@pytest.mark.parametrize(("method", "path", "field"), [
    ("GET", "/v1/contracts/C!1", "contract_id"),
    ("GET", "/v1/contracts/" + "C" * 65, "contract_id"),
    ("GET", "/v1/contracts/C%7B1%7D/charges", "contract_id"),
    ("GET", "/v1/lines/090%201111", "msisdn"),
    ("POST", "/v1/lines/090*1/suspend", "msisdn"),
    ("GET", "/v1/lines/by-iccid/89%7C81", "iccid"),
    ("GET", "/v1/lines/" + "9" * 65 + "/usage", "msisdn"),
])
async def test_bad_id_in_path_is_400(seeded: Env, method: str, path: str, field: str) -> None:
    assert error(await seeded.call(method, path)) == (400, "invalid_id", field, None)


async def test_body_over_64_kib_is_413(seeded: Env) -> None:
    big = b'{"units": 1, "pad": "' + b"x" * (64 * 1024) + b'"}'
    assert error(await seeded.call("POST", "/v1/contracts/C1/charges", data=big)) == (413, "too_large", None, None)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b" " * 1024

    resp = await seeded.client.post("/v1/contracts", data=chunks(), headers={"Authorization": f"Bearer {OP}"})
    assert resp.status == 413
    assert (await seeded.call("GET", "/v1/contracts/C1/charges"))[1]["charges"] == []
    spaced = b" " * (60 * 1024) + b'{"units": 1}'  # under the limit: fine
    assert (await seeded.call("POST", "/v1/contracts/C1/charges", data=spaced))[0] == 201


# -- OpenAPI and metrics (R-74) -------------------------------------------------------------------


async def test_openapi_document_describes_exactly_the_router(env: Env) -> None:
    resp = await env.client.get("/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    app = env.client.app
    assert app is not None
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    assert documented == served
    assert len(served) == len(routes.ROUTES) + 1  # and the document's own path
    op = doc["paths"]["/v1/contracts/{contract_id}/charges"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChargeRequest"}
    assert doc["components"]["schemas"]["ChargeRequest"]["properties"]["units"]["minimum"] == 1


async def test_r74_requests_counted_by_route_template(seeded: Env) -> None:
    labels = {"route": "/v1/lines/{msisdn}", "method": "GET", "status": "404"}
    before = REGISTRY.get_sample_value("quotad_api_requests_total", labels) or 0.0
    await seeded.call("GET", "/v1/lines/09099999999")
    await seeded.call("GET", "/v1/lines/09099999998")
    assert REGISTRY.get_sample_value("quotad_api_requests_total", labels) == before + 2
    count = REGISTRY.get_sample_value("quotad_api_request_duration_seconds_count",
                                      {"route": "/v1/lines/{msisdn}", "method": "GET"})
    assert count is not None and count >= 2
