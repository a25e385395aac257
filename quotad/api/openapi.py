"""The OpenAPI 3.1 document of the /v1 API, built from the same route table as the router."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from quotad.api import publicsafety_views, schemas

if TYPE_CHECKING:
    from quotad.api.route import Route

_PARAM = re.compile(r"\{(\w+)\}")
_PARAM_TEXT = {
    "contract_id": "Contract (service code) id.",
    "msisdn": "Phone number of the line.",
    "iccid": "ICCID of the line's current card (of its new card, to activate it).",
    **publicsafety_views.PARAMS,
}
_ERRORS = {
    400: "Malformed request: JSON, shape, types or id syntax (R-72).",
    401: "No or unknown bearer token.",
    403: "The token's role may not do this (operators only).",
    404: "No such contract or line (or not the customer's own).",
    409: "Conflict: duplicate id, a terminated line, or a card change in progress.",
    413: "Request body over 64 KiB.",
    422: "A value is not acceptable (unknown plan, limit of §3 or R-11, range).",
    503: "The data store is unavailable.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


_INT = {"type": "integer"}
_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_NSTR = {"type": ["string", "null"]}

COMPONENTS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": _STR, "field": _NSTR, "rule": _NSTR, "message": _STR})}),
    "Bucket": _obj({"id": _STR, "kind": {"type": "string", "enum": ["bundle", "coupon"]}, "size": _INT,
                    "left": _INT, "expires_at": _TIME}),
    "Line": _obj({"contract_id": _STR, "msisdn": _STR, "iccid": _STR, "imsi": _STR, "card_type": _STR,
                  "voice": {"type": "boolean"}, "status": _STR, "coupon_on": {"type": "boolean"},
                  "held": _INT, "speed": _NSTR, "overrun": _INT, "sessions": _INT}),
    "Card": _obj({"contract_id": _STR, "msisdn": _STR, "iccid": _STR, "imsi": _STR, "card_type": _STR,
                  "reason": {"type": ["string", "null"], "enum": ["type-change", "lost", "broken", None]},
                  "state": {"type": "string", "enum": ["pending", "active"]},
                  "replaced": {"oneOf": [{"type": "null"}, _obj({"iccid": _STR, "imsi": _STR, "card_type": _STR})]},
                  "line": _ref("Line")}),
    "Contract": _obj({"id": _STR, "plan": _STR, "start_date": {"type": "string", "format": "date"},
                      "pool": _INT, "buckets": {"type": "array", "items": _ref("Bucket")},
                      "lines": {"type": "array", "items": _ref("Line")}}),
    "Charge": _obj({"at": _TIME, "units": _INT, "bytes": _INT, "who": _STR, "bucket_id": _STR}),
    "ChargeHistory": _obj({"contract_id": _STR, "since": _TIME,
                           "charges": {"type": "array", "items": _ref("Charge")}}),
    "Usage": _obj({
        "contract_id": _STR, "msisdn": _STR,
        "today": {**_obj({"date": {"type": "string", "format": "date"}, "high": _INT, "low": _INT, "as_of": _TIME}),
                  "description": "Today (the current Japan day) so far: running figures as of `as_of`, counted "
                                 "from the accounting reports stored until then. Not one of `days`."},
        "days": {"type": "array", "description": "R-35: the 3 Japan days before today, most recent first.",
                 "items": _obj({"date": {"type": "string", "format": "date"}, "high": _INT, "low": _INT})}}),
    **publicsafety_views.COMPONENTS,
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route) -> dict[str, Any]:
    codes = [400, 401, 503]
    codes += [403] if route.operator_only else []
    codes += [404] if "{" in route.path else []
    codes += [409] if route.conflicts else []
    codes += [413, 422] if route.body else []
    responses = {str(route.status): _json(_ref(route.response), "OK" if route.status == 200 else "Created")}
    responses.update({str(c): _json(_ref("Error"), _ERRORS[c]) for c in sorted(codes)})
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{route.path.removeprefix('/v1/').replace('/', '_')}"
        .replace("{", "").replace("}", "").replace("-", "_"),
        "parameters": [
            {"name": p, "in": "path", "required": True, "description": _PARAM_TEXT[p],
             "schema": {"type": "string", "pattern": schemas.ID_PATTERN}}
            for p in _PARAM.findall(route.path)
        ],
        "responses": responses,
    }
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(route.body.name)}}}
    if route.operator_only:
        op["description"] = "Operators only."
    return op


def document(routes: Sequence[Route], openapi_path: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document: every route of the table, plus the document's own path."""
    paths: dict[str, dict[str, Any]] = {}
    components = dict(COMPONENTS)
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        if route.body is not None:
            components[route.body.name] = route.body.json_schema()
        if route.response_schema is not None:
            components[route.response] = route.response_schema
    paths[openapi_path] = {"get": {
        "summary": "This document", "operationId": "get_openapi", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "quotad API", "version": "1",
                 "description": "Operator and customer operations on contracts, lines and coupons (SPEC §5)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
