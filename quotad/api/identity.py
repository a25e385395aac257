"""Identity verification over HTTP (SPEC §7, R-50, R-51): the contract holder, submissions, state.

    PUT    /v1/contracts/{id}/holder     register or change the holder (name, address, birth date)
    GET    /v1/contracts/{id}/holder
    POST   /v1/contracts/{id}/identity   submit documents (JSON, images in base64): verified or refused
    GET    /v1/contracts/{id}/identity   state, accepted image hashes, voice lines waiting, history
    DELETE /v1/contracts/{id}/identity   withdraw a verification (operators): voice lines are cut off

A customer's token works on its own contract only (others answer 404). A customer may change
the holder's family name and address but not the given name or birth date (seed 001 FAQ), and
may not register a holder. Nothing personal is logged; images are never stored (docs/identity.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web

from quotad import log, metrics
from quotad.api import schemas, views
from quotad.api.auth import Principal
from quotad.api.errors import ApiError, forbidden, not_found, unprocessable
from quotad.api.handlers import Api
from quotad.api.route import Route
from quotad.identity import documents, records
from quotad.identity.records import IdentityStore, IdentityStoreError, StoredHolder, Verification
from quotad.identity.submission import MAX_BODY, InputError, parse_holder, parse_submission
from quotad.identity.verify import Holder, Refusal, verify
from quotad.quota import calendar as cal
from quotad.quota.errors import NotFound
from quotad.quota.model import LineRef

_log = log.get("quotad.api.identity")
_stores: WeakKeyDictionary[Any, IdentityStore] = WeakKeyDictionary()


def _store(api: Api) -> IdentityStore:
    """The identity store on the API's Redis client (scripts registered once per client)."""
    store = _stores.get(api.store.client)
    if store is None:
        store = _stores[api.store.client] = IdentityStore(api.store.client)
    return store


def _contract_id(request: web.Request, principal: Principal) -> str:
    contract_id = schemas.check_id(request.match_info["contract_id"], "contract_id")
    if not principal.may_see(contract_id):
        raise _no_contract(contract_id)
    return contract_id


def _no_contract(contract_id: str) -> ApiError:
    return not_found(f"no contract {contract_id}", "contract_id", "R-50")


def _today(api: Api) -> dt.date:
    return cal.local(api.now(), api.tz).date()


def _input_error(exc: InputError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, field=exc.field, rule="R-51")


def _store_error(exc: IdentityStoreError, contract_id: str) -> ApiError:
    if exc.kind == "notfound":
        return _no_contract(contract_id)
    messages = {
        "conflict": ("holder_changed", "the contract holder changed meanwhile: submit again"),
        "verified": ("already_verified", "the contract holder's identity is already verified"),
        "unverified": ("not_verified", "the contract holder's identity is not verified"),
    }
    code, message = messages.get(exc.kind, ("conflict", exc.kind))
    return ApiError(409, code, message, field=None, rule="R-50")


# -- views -------------------------------------------------------------------------------------------


def _holder_view(contract_id: str, stored: StoredHolder) -> dict[str, Any]:
    h = stored.holder
    return {"contract_id": contract_id, "family_name": h.family_name, "given_name": h.given_name,
            "address": h.address, "birth_date": h.birth_date.isoformat(), "rev": stored.rev}


def _identity_view(contract_id: str, v: Verification, voice: list[str], tz: str) -> dict[str, Any]:
    history = [{**e, "at": views.iso(float(e["at"]), tz)} for e in v.history]
    return {
        "contract_id": contract_id, "status": v.status,
        "verified_at": views.iso(v.at, tz) if v.at is not None else None,
        "document_type": v.document_type, "supporting_type": v.supporting_type,
        "image_sha256": list(v.image_sha256),
        "voice_lines_waiting": voice if v.status != records.VERIFIED else [],
        "history": history,
    }


async def _voice_lines(api: Api, contract_id: str) -> list[str]:
    try:
        view = await api.store.views.contract_view(contract_id, api.now())
    except NotFound:
        raise _no_contract(contract_id) from None
    return [line.msisdn for line in view.lines if line.voice]


async def _identity_response(api: Api, contract_id: str, status: int = 200) -> web.Response:
    voice = await _voice_lines(api, contract_id)
    state = await _store(api).verification(contract_id)
    return web.json_response(_identity_view(contract_id, state, voice, api.tz), status=status)


# -- holder ------------------------------------------------------------------------------------------


async def put_holder(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """PUT /v1/contracts/{contract_id}/holder: the contract holder every document is compared with."""
    contract_id = _contract_id(request, principal)
    try:
        holder = parse_holder(await schemas.read_json(request))
    except InputError as exc:
        raise _input_error(exc) from None
    if holder.birth_date > _today(api):
        raise unprocessable("invalid_value", "birth_date is after today", "birth_date", "R-51")
    store = _store(api)
    current = await store.holder(contract_id)
    if not principal.is_operator:
        _customer_may_change(current, holder)
    try:
        rev = await store.set_holder(contract_id, holder, api.now(), current.rev if current else 0)
    except IdentityStoreError as exc:
        raise _store_error(exc, contract_id) from None
    return web.json_response(_holder_view(contract_id, StoredHolder(holder, rev)))


def _customer_may_change(current: StoredHolder | None, new: Holder) -> None:
    """Customers correct their family name and address; the rest is the operator's (seed 001)."""
    if current is None:
        raise forbidden("the contract holder is registered by an operator")
    if new.given_name != current.holder.given_name:
        raise ApiError(403, "holder_locked", "the given name can be changed by an operator only",
                       field="given_name", rule="R-51")
    if new.birth_date != current.holder.birth_date:
        raise ApiError(403, "holder_locked", "the birth date can be changed by an operator only",
                       field="birth_date", rule="R-51")


async def get_holder(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """GET /v1/contracts/{contract_id}/holder."""
    contract_id = _contract_id(request, principal)
    stored = await _store(api).holder(contract_id)
    if stored is None:
        if not await api.store.client.exists(records.IdentityKeys(contract_id).contract):
            raise _no_contract(contract_id)
        raise not_found(f"contract {contract_id} has no registered holder", "holder", "R-51")
    return web.json_response(_holder_view(contract_id, stored))


# -- identity ----------------------------------------------------------------------------------------


async def submit(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST /v1/contracts/{contract_id}/identity: check a submission (R-51); verified → 201."""
    contract_id = _contract_id(request, principal)
    store = _store(api)
    stored = await _holder_for_submission(api, store, contract_id)
    try:
        submission = parse_submission(await schemas.read_json(request, MAX_BODY))
    except InputError as exc:
        raise _input_error(exc) from None
    outcome = verify(stored.holder, submission, _today(api))
    document_type = _known_type(submission.document.type)
    del submission  # the images go no further than this request (docs/identity.md)
    try:
        await store.record(contract_id, stored.rev, outcome, principal.who, api.now(), document_type)
    except IdentityStoreError as exc:
        raise _store_error(exc, contract_id) from None
    if isinstance(outcome, Refusal):
        metrics.IDENTITY_OUTCOMES.labels("refused", outcome.code).inc()
        _log.info("identity_refused", contract_id=contract_id, code=outcome.code, discarded=outcome.discard)
        raise unprocessable(outcome.code, outcome.message, outcome.field, outcome.rule)
    metrics.IDENTITY_OUTCOMES.labels("verified", "").inc()
    _log.info("identity_verified", contract_id=contract_id, document_type=document_type)
    return await _identity_response(api, contract_id, 201)


def _known_type(value: str) -> str:
    """The document type for the history: a code of the lists, never free text a caller typed."""
    return value if value in documents.DOCUMENTS or value in documents.NOT_ACCEPTED else "other"


async def _holder_for_submission(api: Api, store: IdentityStore, contract_id: str) -> StoredHolder:
    """The holder to compare with; 404 without the contract, 409 without a holder or if verified."""
    if not await api.store.client.exists(records.IdentityKeys(contract_id).contract):
        raise _no_contract(contract_id)
    if (await store.verification(contract_id)).status == records.VERIFIED:
        raise _store_error(IdentityStoreError("verified"), contract_id)
    stored = await store.holder(contract_id)
    if stored is None:
        raise ApiError(409, "no_holder", "register the contract holder first (PUT .../holder)",
                       field="holder", rule="R-51")
    return stored


async def get_identity(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """GET /v1/contracts/{contract_id}/identity: verified or not, and the recent outcomes."""
    return await _identity_response(api, _contract_id(request, principal))


async def revoke(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """DELETE /v1/contracts/{contract_id}/identity: withdraw it; voice lines' sessions are dropped."""
    contract_id = _contract_id(request, principal)
    try:
        await _store(api).revoke(contract_id, principal.who, api.now())
    except IdentityStoreError as exc:
        raise _store_error(exc, contract_id) from None
    voice = await _voice_lines(api, contract_id)
    if api.on_line_change is not None:
        hook = api.on_line_change
        results = await asyncio.gather(*(hook(LineRef(contract_id, m), "suspend") for m in voice),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                _log.error("line_change_hook_failed", contract_id=contract_id, error=type(result).__name__)
    metrics.IDENTITY_OUTCOMES.labels("revoked", "").inc()
    _log.info("identity_revoked", contract_id=contract_id)
    return await _identity_response(api, contract_id)


# -- the route table -----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class _SchemaBody(schemas.Body):
    """A request body documented by a JSON Schema of its own (nested objects, optional fields);
    its handler reads it with quotad.identity.submission."""

    schema: dict[str, Any] = field(default_factory=dict)

    def json_schema(self) -> dict[str, Any]:
        return self.schema


_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_DATE_S = {"type": "string", "format": "date"}
_BOOL = {"type": "boolean"}
_IMAGES = {"type": "array", "minItems": 1, "maxItems": 2, "items": {
    "type": "object", "additionalProperties": False, "required": ["side", "data"],
    "properties": {"side": {"type": "string", "enum": ["front", "back"]},
                   "data": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/jpeg",
                            "description": "The JPEG file, base64; at most 4 MiB decoded (R-51)."}}}}


def _object(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": [p for p in props if p not in optional]}


HOLDER = schemas.Body("NewHolder", (
    schemas.Field("family_name", str, "Family name, as on the identity document (R-51)."),
    schemas.Field("given_name", str, "Given name, as on the identity document (R-51)."),
    schemas.Field("address", str, "Current address, as on the documents (R-51)."),
    schemas.Field("birth_date", str, "Birth date, YYYY-MM-DD.", is_date=True),
))
SUBMISSION = _SchemaBody("IdentitySubmission", (), _object({
    "document": _object({
        "type": {"type": "string", "description": "Accepted identity document type (docs/identity.md)."},
        "family_name": _S, "given_name": _S, "birth_date": _DATE_S, "address": _NS,
        "expires_on": {"type": ["string", "null"], "format": "date"},
        "images": _IMAGES, "individual_number_shown": _BOOL, "has_photo": _BOOL, "address_on_back": _BOOL,
        "dependant": _BOOL,
    }, optional=("individual_number_shown", "has_photo", "address_on_back", "dependant")),
    "supporting": {"oneOf": [{"type": "null"}, _object({
        "type": {"type": "string", "enum": ["resident_record", "utility_receipt", "residence_certificate"]},
        "family_name": _S, "given_name": _S, "address": _S, "issued_on": _DATE_S, "images": _IMAGES,
        "utility": {"type": ["string", "null"], "enum": ["electricity", "city_gas", "water", None]},
        "paid_by_credit_card": _BOOL, "individual_number_shown": _BOOL,
    }, optional=("utility", "paid_by_credit_card", "individual_number_shown"))]},
}, optional=("supporting",)))

HOLDER_VIEW = _object({"contract_id": _S, "family_name": _S, "given_name": _S, "address": _S,
                       "birth_date": _DATE_S, "rev": {"type": "integer"}})
IDENTITY_VIEW = _object({
    "contract_id": _S, "status": {"type": "string", "enum": ["verified", "unverified"]},
    "verified_at": {"type": ["string", "null"], "format": "date-time"}, "document_type": _NS,
    "supporting_type": _NS, "image_sha256": {"type": "array", "items": _S},
    "voice_lines_waiting": {"type": "array", "items": _S},
    "history": {"type": "array", "items": _object({
        "at": {"type": "string", "format": "date-time"}, "who": _S,
        "outcome": {"type": "string", "enum": ["verified", "refused", "revoked"]},
        "code": _NS, "rule": _NS, "field": _NS, "document_type": _NS})},
})

IDENTITY_ROUTES: tuple[Route, ...] = (
    Route("PUT", "/v1/contracts/{contract_id}/holder", put_holder,
          "Register or change the contract holder (R-51); customers: family name and address only",
          body=HOLDER, response="Holder", response_schema=HOLDER_VIEW, conflicts=True),
    Route("GET", "/v1/contracts/{contract_id}/holder", get_holder, "The contract holder (R-51)",
          response="Holder", response_schema=HOLDER_VIEW),
    Route("POST", "/v1/contracts/{contract_id}/identity", submit,
          "Submit identity documents, JPEG in base64, body up to 22 MiB (R-51); 422 names the rule that failed",
          body=SUBMISSION, status=201, response="Identity", response_schema=IDENTITY_VIEW, conflicts=True),
    Route("GET", "/v1/contracts/{contract_id}/identity", get_identity,
          "Identity state: verified or not, voice lines waiting (R-50), recent outcomes", response="Identity",
          response_schema=IDENTITY_VIEW),
    Route("DELETE", "/v1/contracts/{contract_id}/identity", revoke,
          "Withdraw a verification; voice lines are disconnected and may not attach (R-50)",
          operator_only=True, response="Identity", response_schema=IDENTITY_VIEW, conflicts=True),
)
