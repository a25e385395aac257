"""Hostile input to the HTTP API beyond tests/integration/test_api.py: unicode and path traversal
in ids, forged and malformed tokens, wrong JSON types and non-finite numbers, oversized headers —
each a clear 4xx naming what is wrong, nothing changed, no other contract reachable (R-72)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_api import CUST1, CUST2, OP, Env, env, error, line_body, seeded

__all__ = ["env", "seeded"]  # fixtures


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/contracts/C%C3%A91", "contract_id"),            # C\u00e91
    ("/v1/contracts/%EF%BC%A3%EF%BC%91", "contract_id"),  # fullwidth C1
    ("/v1/contracts/C%E2%80%8B1", "contract_id"),         # zero-width space
    ("/v1/contracts/C%E2%80%AE1", "contract_id"),         # right-to-left override
    ("/v1/contracts/C%001", "contract_id"),               # NUL
    ("/v1/lines/%D9%A0%D9%A9%D9%A0", "msisdn"),           # Arabic-Indic digits
    ("/v1/lines/by-iccid/89%F0%9F%98%8081", "iccid"),     # an emoji
    ("/v1/contracts/..%2FC1", "contract_id"),
    ("/v1/contracts/%2e%2e%2fC1/charges", "contract_id"),
    ("/v1/lines/..%2f..%2fcontracts%2fC1", "msisdn"),
    ("/v1/lines/by-iccid/%2E%2E%2F89", "iccid"),
    ("/v1/contracts/C1%2F..%2FC2", "contract_id"),
])
async def test_r72_unicode_and_traversal_in_path_ids_are_400_naming_the_id(seeded: Env, path: str, field: str) -> None:
    assert error(await seeded.call("GET", path)) == (400, "invalid_id", field, None)


@pytest.mark.parametrize("path", ["/v1/contracts/C2/../C1", "/v1/contracts/C2/./../C1", "/v1/lines/../contracts/C1"])
async def test_r72_dot_segments_never_reach_another_contract(seeded: Env, path: str) -> None:
    """Whatever the router makes of dot segments, a customer of C2 never sees C1."""
    status, body = await seeded.call("GET", path, token=CUST2)
    assert status in (400, 404), (status, body)
    assert "C1" not in str(body.get("contract_id", "")) and "lines" not in body


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "C\u00e9", "plan": "light_start", "start_date": "2024-06-01"}, "id"),
    ({"id": "\uff23\uff15", "plan": "light_start", "start_date": "2024-06-01"}, "id"),
    ({"id": "../C1", "plan": "light_start", "start_date": "2024-06-01"}, "id"),
    ({"id": "C5\n", "plan": "light_start", "start_date": "2024-06-01"}, "id"),
])
async def test_r72_unicode_and_traversal_in_body_ids_are_400(seeded: Env, body: dict[str, Any], field: str) -> None:
    assert error(await seeded.call("POST", "/v1/contracts", body=body)) == (400, "invalid_id", field, None)


@pytest.mark.parametrize(("field", "value"), [("msisdn", "\u0660\u0669\u0660"), ("iccid", "89\U0001f60081"),
                                              ("imsi", "4401\u200b0")])
async def test_r72_unicode_in_line_ids_is_400(seeded: Env, field: str, value: str) -> None:
    assert error(await seeded.call("POST", "/v1/contracts/C2/lines", body=line_body(7, **{field: value}))) == (
        400, "invalid_id", field, None)
    assert [x["msisdn"] for x in (await seeded.call("GET", "/v1/contracts/C2"))[1]["lines"]] == ["09011110003"]


@pytest.mark.parametrize(("data", "field"), [
    (b'{"units": NaN}', "units"), (b'{"units": Infinity}', "units"), (b'{"units": -Infinity}', "units"),
    (b'{"units": 1e400}', "units"), (b'{"units": null}', "units"), (b'{"units": [1]}', "units"),
    (b'{"units": {"n": 1}}', "units"),
])
async def test_r72_wrong_json_types_and_non_finite_numbers_are_named(seeded: Env, data: bytes, field: str) -> None:
    assert error(await seeded.call("POST", "/v1/contracts/C1/charges", data=data)) == (
        400, "wrong_type", field, "R-11")
    assert (await seeded.call("GET", "/v1/contracts/C1/charges"))[1]["charges"] == []


@pytest.mark.parametrize("authorization", [
    f"Bearer {OP[:-1]}", f"Bearer {OP.upper()}", f"Bearer {OP}x", f"Bearer {CUST1}{CUST2}", f"Bearer {OP},{OP}",
    "Bearer " + "x" * 4000, "Bearer \u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", "Bearer", "Bearer ", OP,
    f"Basic {OP}", f"Token {OP}",
])
async def test_r72_forged_or_malformed_tokens_are_401(seeded: Env, authorization: str) -> None:
    resp = await seeded.client.get("/v1/contracts/C1", headers={"Authorization": authorization})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("authorization", [f"bearer {OP}", f"BEARER {OP}", f"Bearer  {OP}", f"Bearer {OP} "])
async def test_r72_token_spellings_http_allows_are_accepted(seeded: Env, authorization: str) -> None:
    """RFC 7235: the scheme is case-insensitive; whitespace around the credentials is not part of it."""
    resp = await seeded.client.get("/v1/contracts/C1", headers={"Authorization": authorization})
    assert resp.status == 200


async def test_r72_oversized_header_is_refused_without_reaching_the_api(seeded: Env) -> None:
    resp = await seeded.client.get("/v1/contracts/C1", headers={"Authorization": f"Bearer {OP}", "X-Pad": "p" * 20000})
    assert resp.status in (400, 431)
    assert seeded.events == []
