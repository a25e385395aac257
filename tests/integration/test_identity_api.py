"""Identity verification over the HTTP API (SPEC §7: R-50, R-51) against a real Redis."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from quotad.api import routes
from quotad.config import ApiSettings, Config, Secret, TokenSettings
from quotad.identity.submission import MAX_BODY
from quotad.metrics import REGISTRY
from quotad.policy.plans import default_catalog
from quotad.quota.model import LineRef, QuotaSettings
from quotad.quota.store import QuotaStore
from tests.redis_client import make_client

JST = dt.timezone(dt.timedelta(hours=9))
DATA = Path(__file__).resolve().parent.parent / "data"
JPEG = (DATA / "baseline.jpg").read_bytes()
JPEG2 = (DATA / "progressive.jpg").read_bytes()
PNG = (DATA / "python.png").read_bytes()
JPEG_SHA = "0171178ae901e108f56305aff7e36268a690bc49933a24b1aaa587fda00f4d3b"
JPEG2_SHA = "a584e74203bcf974f21133b75129b810b33afd67e16767812e9b2f34a6e9393d"
OP = "operator-token-0123456789abcdef"
CUST1 = "customer-token-c1-0123456789ab"
CUST2 = "customer-token-c2-0123456789ab"
TOKENS = (
    TokenSettings(token=Secret(OP), role="operator"),
    TokenSettings(token=Secret(CUST1), role="customer", contract="C1"),
    TokenSettings(token=Secret(CUST2), role="customer", contract="C2"),
)
HOLDER = {"family_name": "山田", "given_name": "太郎", "address": "東京都千代田区神田神保町1-105",
          "birth_date": "1990-04-01"}
OLD_ADDRESS = "大阪府大阪市北区梅田3-1"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """Epoch of a Japan wall-clock time."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=JST).timestamp()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def licence(**over: Any) -> dict[str, Any]:
    doc = {"type": "drivers_licence", "family_name": "山田", "given_name": "太郎", "birth_date": "1990-04-01",
           "address": HOLDER["address"], "expires_on": "2028-05-01", "images": [{"side": "front", "data": b64(JPEG)}]}
    return {**doc, **over}


def resident_record(**over: Any) -> dict[str, Any]:
    doc = {"type": "resident_record", "family_name": "山田", "given_name": "太郎", "address": HOLDER["address"],
           "issued_on": "2026-10-01", "images": [{"side": "front", "data": b64(JPEG2)}]}
    return {**doc, **over}


class Env:
    def __init__(self, client: TestClient[web.Request, web.Application], store: QuotaStore) -> None:
        self.client = client
        self.store = store
        self.now = at(2026, 11, 23, 12)
        self.events: list[tuple[LineRef, str]] = []

    def clock(self) -> float:
        return self.now

    async def hook(self, ref: LineRef, event: str) -> None:
        self.events.append((ref, event))

    async def call(self, method: str, path: str, token: str | None = OP, body: Any = None,
                   data: bytes | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, path, json=body, data=data, headers=headers)
        return resp.status, await resp.json()

    async def submit(self, contract: str, document: dict[str, Any], supporting: dict[str, Any] | None = None,
                     token: str = OP) -> tuple[int, Any]:
        body: dict[str, Any] = {"document": document}
        if supporting is not None:
            body["supporting"] = supporting
        return await self.call("POST", f"/v1/contracts/{contract}/identity", token, body)

    async def redis_dump(self) -> bytes:
        """Every key and value in Redis, concatenated: to prove what is (not) stored."""
        out = b""
        client = self.store.client
        async for key in client.scan_iter("*"):
            kind = (await client.type(key)).decode()
            out += key + b"="
            if kind == "hash":
                out += b"".join(a + b":" + b for a, b in (await client.hgetall(key)).items())
            elif kind == "list":
                out += b"".join(await client.lrange(key, 0, -1))
            elif kind == "string":
                out += await client.get(key)
            elif kind in ("set", "zset"):
                out += b"".join(await client.smembers(key) if kind == "set" else await client.zrange(key, 0, -1))
        return out


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    store = QuotaStore(make_client(redis_url, max_connections=8), QuotaSettings(), default_catalog())
    await store.load_scripts()
    app = web.Application()
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    e = Env(client, store)
    routes.setup(app, store, Config(api=ApiSettings(tokens=TOKENS)), e.clock, e.hook)
    await client.start_server()
    yield e
    await client.close()
    await store.close()


@pytest.fixture
async def seeded(env: Env) -> Env:
    """C1 (family_share) with a voice line and a data line and a registered holder; C2 without holder."""
    for cid, plan in (("C1", "family_share"), ("C2", "light_start")):
        assert (await env.call("POST", "/v1/contracts", body={"id": cid, "plan": plan,
                                                              "start_date": "2026-11-01"}))[0] == 201
    for n, voice in ((1, True), (2, False)):
        line = {"msisdn": f"0901111000{n}", "iccid": f"898100000000000000{n}", "imsi": f"44010000000000{n}",
                "card_type": "nano", "voice": voice}
        assert (await env.call("POST", "/v1/contracts/C1/lines", body=line))[0] == 201
    assert (await env.call("PUT", "/v1/contracts/C1/holder", body=HOLDER))[0] == 200
    return env


def error(status_body: tuple[int, Any]) -> tuple[int, str, str | None, str | None]:
    status, body = status_body
    e = body["error"]
    return status, e["code"], e["field"], e["rule"]


# -- the holder ------------------------------------------------------------------------------------------


async def test_r51_holder_registered_by_operator_and_read_back(seeded: Env) -> None:
    expected = {"contract_id": "C1", **HOLDER, "rev": 1}
    assert await seeded.call("GET", "/v1/contracts/C1/holder") == (200, expected)
    assert await seeded.call("GET", "/v1/contracts/C1/holder", CUST1) == (200, expected)
    assert error(await seeded.call("GET", "/v1/contracts/C1/holder", CUST2)) == (404, "not_found", "contract_id",
                                                                                 "R-50")
    assert error(await seeded.call("GET", "/v1/contracts/C2/holder")) == (404, "not_found", "holder", "R-51")
    assert error(await seeded.call("PUT", "/v1/contracts/C9/holder", body=HOLDER)) == (
        404, "not_found", "contract_id", "R-50")


async def test_r51_customer_changes_family_name_and_address_only(seeded: Env) -> None:
    moved = {**HOLDER, "family_name": "佐藤", "address": OLD_ADDRESS}
    assert await seeded.call("PUT", "/v1/contracts/C1/holder", CUST1, moved) == (
        200, {"contract_id": "C1", **moved, "rev": 2})
    assert error(await seeded.call("PUT", "/v1/contracts/C1/holder", CUST1, {**moved, "given_name": "次郎"})) == (
        403, "holder_locked", "given_name", "R-51")
    assert error(await seeded.call("PUT", "/v1/contracts/C1/holder", CUST1, {**moved, "birth_date": "1990-04-02"})) \
        == (403, "holder_locked", "birth_date", "R-51")
    assert error(await seeded.call("PUT", "/v1/contracts/C2/holder", CUST2, HOLDER))[:2] == (403, "forbidden")


@pytest.mark.parametrize(("body", "expected"), [
    ({**HOLDER, "birth_date": "1990-02-30"}, (400, "invalid_date", "birth_date", "R-51")),
    ({**HOLDER, "birth_date": "2026-11-24"}, (422, "invalid_value", "birth_date", "R-51")),
    ({**HOLDER, "family_name": "　 "}, (422, "invalid_value", "family_name", "R-51")),
    ({**HOLDER, "address": "x" * 201}, (422, "invalid_value", "address", "R-51")),
    ({**HOLDER, "nickname": "taro"}, (400, "unknown_field", "nickname", "R-51")),
    ({k: v for k, v in HOLDER.items() if k != "address"}, (400, "missing_field", "address", "R-51")),
    ({**HOLDER, "given_name": 7}, (400, "wrong_type", "given_name", "R-51")),
])
async def test_r72_bad_holder_named_by_field(seeded: Env, body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert error(await seeded.call("PUT", "/v1/contracts/C1/holder", body=body)) == expected


# -- submissions -----------------------------------------------------------------------------------------


async def test_r50_customer_submission_verifies_the_contract(seeded: Env) -> None:
    status, body = await seeded.submit("C1", licence(), token=CUST1)
    assert status == 201
    assert body == {
        "contract_id": "C1", "status": "verified", "verified_at": "2026-11-23T12:00:00+09:00",
        "document_type": "drivers_licence", "supporting_type": None, "image_sha256": [JPEG_SHA],
        "voice_lines_waiting": [],
        "history": [{"at": "2026-11-23T12:00:00+09:00", "who": "customer#1", "outcome": "verified", "code": None,
                     "rule": None, "field": None, "document_type": "drivers_licence"}],
    }
    assert await seeded.call("GET", "/v1/contracts/C1/identity", CUST1) == (200, body)
    assert await seeded.store.client.hget("q:{c:C1}:c", "identity") == b"verified"
    # Only the hash is kept: neither the image nor its base64 is anywhere in Redis.
    dump = await seeded.redis_dump()
    assert JPEG_SHA.encode() in dump and JPEG not in dump and b64(JPEG)[:64].encode() not in dump
    # Verified once is verified: a second submission is a conflict, not a new check.
    assert error(await seeded.submit("C1", licence())) == (409, "already_verified", None, "R-50")


async def test_r50_unverified_state_lists_the_voice_lines_waiting(seeded: Env) -> None:
    assert await seeded.call("GET", "/v1/contracts/C1/identity") == (200, {
        "contract_id": "C1", "status": "unverified", "verified_at": None, "document_type": None,
        "supporting_type": None, "image_sha256": [], "voice_lines_waiting": ["09011110001"], "history": []})


async def test_r51_address_differs_verified_with_resident_record(seeded: Env) -> None:
    status, body = await seeded.submit("C1", licence(address=OLD_ADDRESS), resident_record())
    assert status == 201
    assert (body["supporting_type"], body["image_sha256"]) == ("resident_record", [JPEG_SHA, JPEG2_SHA])


def outcomes(outcome: str, code: str = "") -> float:
    labels = {"outcome": outcome, "code": code}
    return REGISTRY.get_sample_value("quotad_identity_outcomes_total", labels) or 0.0


async def test_r74_outcomes_counted_by_code(seeded: Env) -> None:
    before = (outcomes("refused", "document_expired"), outcomes("verified"), outcomes("revoked"))
    await seeded.submit("C1", licence(expires_on="2026-11-22"))
    await seeded.submit("C1", licence())
    await seeded.call("DELETE", "/v1/contracts/C1/identity")
    after = (outcomes("refused", "document_expired"), outcomes("verified"), outcomes("revoked"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


async def test_r51_refusal_names_code_field_rule_and_is_recorded(seeded: Env) -> None:
    assert error(await seeded.submit("C1", licence(address=OLD_ADDRESS))) == (
        422, "supporting_required", "supporting", "R-51")
    assert error(await seeded.submit("C1", licence(family_name="髙田"), token=CUST1)) == (
        422, "name_mismatch", "document.family_name", "R-51")
    status, state = await seeded.call("GET", "/v1/contracts/C1/identity")
    assert (status, state["status"], state["image_sha256"]) == (200, "unverified", [])
    assert state["history"] == [
        {"at": "2026-11-23T12:00:00+09:00", "who": "customer#1", "outcome": "refused", "code": "name_mismatch",
         "rule": "R-51", "field": "document.family_name", "document_type": "drivers_licence"},
        {"at": "2026-11-23T12:00:00+09:00", "who": "operator#0", "outcome": "refused",
         "code": "supporting_required", "rule": "R-51", "field": "supporting", "document_type": "drivers_licence"},
    ]
    assert await seeded.store.client.hget("q:{c:C1}:c", "identity") is None


async def test_r51_expiry_is_checked_on_the_japan_date(seeded: Env) -> None:
    # 2026-11-22 23:59:59 in Japan (14:59:59 UTC): a licence expiring on the 22nd is still valid.
    seeded.now = at(2026, 11, 22, 23, 59, 59)
    await seeded.call("POST", "/v1/contracts", body={"id": "C3", "plan": "light_start", "start_date": "2026-11-01"})
    await seeded.call("PUT", "/v1/contracts/C3/holder", body=HOLDER)
    assert (await seeded.submit("C3", licence(expires_on="2026-11-22")))[0] == 201
    # One second later it is the 23rd in Japan (still the 22nd in UTC): expired.
    seeded.now = at(2026, 11, 23, 0, 0, 0)
    assert error(await seeded.submit("C1", licence(expires_on="2026-11-22"))) == (
        422, "document_expired", "document.expires_on", "R-51")


async def test_r51_supporting_within_3_months_on_the_japan_date(seeded: Env) -> None:
    seeded.now = at(2026, 11, 23, 0, 30)  # 22 November 15:30 UTC: in UTC 3 months back would be 22 August
    assert error(await seeded.submit("C1", licence(address=OLD_ADDRESS), resident_record(issued_on="2026-08-22"))) \
        == (422, "supporting_too_old", "supporting.issued_on", "R-51")
    status, body = await seeded.submit("C1", licence(address=OLD_ADDRESS), resident_record(issued_on="2026-08-23"))
    assert (status, body["status"]) == (201, "verified")


async def test_r51_individual_number_refused_and_nothing_of_the_images_kept(seeded: Env) -> None:
    card_back = licence(type="my_number_card", images=[{"side": "front", "data": b64(JPEG)},
                                                       {"side": "back", "data": b64(JPEG2)}])
    status, body = await seeded.submit("C1", card_back)
    assert (status, body["error"]["code"], body["error"]["field"], body["error"]["rule"]) == (
        422, "individual_number_shown", "document.images[1].side", "R-51")
    assert "discarded" in body["error"]["message"]
    record = resident_record(individual_number_shown=True)
    assert error(await seeded.submit("C1", licence(address=OLD_ADDRESS), record)) == (
        422, "individual_number_shown", "supporting.individual_number_shown", "R-51")
    dump = await seeded.redis_dump()
    for image in (JPEG, JPEG2):
        assert image not in dump and b64(image)[:64].encode() not in dump
    assert JPEG_SHA.encode() not in dump and JPEG2_SHA.encode() not in dump


async def test_r51_unknown_type_refused_and_recorded_as_other(seeded: Env) -> None:
    assert error(await seeded.submit("C1", licence(type="山田太郎のカード"))) == (
        422, "document_not_accepted", "document.type", "R-51")
    history = (await seeded.call("GET", "/v1/contracts/C1/identity"))[1]["history"]
    assert (history[0]["code"], history[0]["document_type"]) == ("document_not_accepted", "other")


async def test_r51_png_refused_by_content(seeded: Env) -> None:
    assert error(await seeded.submit("C1", licence(images=[{"side": "front", "data": b64(PNG)}]))) == (
        422, "not_jpeg", "document.images[0].data", "R-51")


async def test_r51_submission_needs_a_holder_and_the_customers_own_contract(seeded: Env) -> None:
    assert error(await seeded.submit("C2", licence())) == (409, "no_holder", "holder", "R-51")
    assert error(await seeded.submit("C1", licence(), token=CUST2)) == (404, "not_found", "contract_id", "R-50")
    assert error(await seeded.submit("C9", licence())) == (404, "not_found", "contract_id", "R-50")


@pytest.mark.parametrize(("body", "expected"), [
    ({}, (400, "missing_field", "document", "R-51")),
    ([], (400, "not_an_object", None, "R-51")),
    ({"document": licence(), "extra": 1}, (400, "unknown_field", "extra", "R-51")),
    ({"document": {**licence(), "expires_on": "2028/05/01"}}, (400, "invalid_date", "document.expires_on", "R-51")),
    ({"document": licence(images=[{"side": "front", "data": "not base64!"}])},
     (400, "invalid_base64", "document.images[0].data", "R-51")),
    ({"document": licence(images=[{"side": "left", "data": b64(JPEG)}])},
     (422, "invalid_value", "document.images[0].side", "R-51")),
    ({"document": licence(images=[])}, (422, "invalid_value", "document.images", "R-51")),
    ({"document": licence(images=[{"side": "front", "data": b64(JPEG)}] * 2)},
     (422, "invalid_value", "document.images", "R-51")),
    ({"document": licence(individual_number_shown="no")},
     (400, "wrong_type", "document.individual_number_shown", "R-51")),
    ({"document": licence(), "supporting": {"type": "resident_record"}},
     (400, "missing_field", "supporting.family_name", "R-51")),
])
async def test_r72_bad_submission_named_by_field(seeded: Env, body: Any, expected: tuple[Any, ...]) -> None:
    assert error(await seeded.call("POST", "/v1/contracts/C1/identity", body=body)) == expected


async def test_r72_submission_size_bounded(seeded: Env) -> None:
    big = "A" * ((4 * 1024 * 1024 + 2) // 3 * 4 + 4)  # one image just over 4 MiB once decoded
    assert error(await seeded.submit("C1", licence(images=[{"side": "front", "data": big}]))) == (
        413, "too_large", "document.images[0].data", "R-51")
    status, body = await seeded.call("POST", "/v1/contracts/C1/identity", data=b" " * (MAX_BODY + 1))
    assert (status, body["error"]["code"]) == (413, "too_large")


# -- revocation ------------------------------------------------------------------------------------------


async def test_r50_revocation_cuts_off_voice_lines_only(seeded: Env) -> None:
    assert (await seeded.submit("C1", licence()))[0] == 201
    assert error(await seeded.call("DELETE", "/v1/contracts/C1/identity", CUST1))[:2] == (403, "forbidden")
    status, body = await seeded.call("DELETE", "/v1/contracts/C1/identity")
    assert (status, body["status"], body["voice_lines_waiting"], body["image_sha256"]) == (
        200, "unverified", ["09011110001"], [])
    assert [h["outcome"] for h in body["history"]] == ["revoked", "verified"]
    assert seeded.events == [(LineRef("C1", "09011110001"), "suspend")]  # Disconnect for the voice line
    assert error(await seeded.call("DELETE", "/v1/contracts/C1/identity")) == (409, "not_verified", None, "R-50")
    # Verified again by a new submission.
    assert (await seeded.submit("C1", licence()))[0] == 201


async def test_openapi_documents_the_identity_routes(env: Env) -> None:
    doc = await (await env.client.get("/v1/openapi.json")).json()
    submit = doc["paths"]["/v1/contracts/{contract_id}/identity"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IdentitySubmission"}
    assert submit["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Identity"}
    schemas = doc["components"]["schemas"]
    assert schemas["Identity"]["properties"]["status"]["enum"] == ["verified", "unverified"]
    assert schemas["NewHolder"]["required"] == ["family_name", "given_name", "address", "birth_date"]
    assert set(doc["paths"]["/v1/contracts/{contract_id}/identity"]) == {"get", "post", "delete"}


async def test_r51_logs_carry_no_personal_data(seeded: Env, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    await seeded.submit("C1", licence(family_name="髙田"))
    await seeded.submit("C1", licence(individual_number_shown=True))
    await seeded.submit("C1", licence(), token=CUST1)
    await seeded.call("PUT", "/v1/contracts/C1/holder", CUST1, {**HOLDER, "address": OLD_ADDRESS})
    logs = capsys.readouterr()
    text = logs.out + logs.err
    assert "identity_refused" in text and "identity_verified" in text  # the outcomes are logged...
    for personal in ("山田", "髙田", "太郎", "千代田", "梅田", "1990", JPEG_SHA, b64(JPEG)[:32]):
        assert personal not in text  # ...but nothing of the person or the documents
