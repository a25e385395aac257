"""The public-safety API (SPEC §6, R-60 … R-65): operators only, in the style of /v1.

Each change reads the contract tree, applies one pure rule (quotad.publicsafety.changes) and
writes the result atomically (PublicSafetyStore); a refusal names the field and the rule.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from functools import partial, wraps
from typing import Any

from aiohttp import web

from quotad.api import publicsafety_views as views
from quotad.api import schemas
from quotad.api.auth import Principal
from quotad.api.errors import ApiError, bad_request, not_found, unprocessable
from quotad.api.handlers import Api
from quotad.api.route import Handler, Route
from quotad.api.schemas import Body, Field
from quotad.publicsafety import billing, changes, rules
from quotad.publicsafety.model import (
    DISASTER_CHOICES,
    GROUP_PLANS,
    ITEMS,
    LINE_KINDS,
    ORG_PLAN,
    SIM_TYPES,
    LineSpec,
    PairApplication,
    Parent,
)
from quotad.publicsafety.rules import RuleError
from quotad.publicsafety.store import PublicSafetyStore, new_claims
from quotad.quota import keys as k
from quotad.quota.errors import NotFound

MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
PLANS = (*GROUP_PLANS, ORG_PLAN)
BASE = "/v1/public-safety"

NEW_PS_CONTRACT = Body("NewPsContract", (
    Field("id", str, "Parent contract id.", is_id=True),
    Field("item", str, "Item: mobile (group plans) or org_share (packs on the parent).", enum=ITEMS, rule="R-63"),
    Field("packs", int, "Org packet share: 1 GB packs (0 for item mobile).", minimum=0, rule="R-63"),
))
NEW_PS_GROUP = Body("NewPsGroup", (
    Field("id", str, "Line group id.", is_id=True),
    Field("kind", str, "Line kind of every line of the group.", enum=LINE_KINDS, rule="R-61"),
    Field("plan", str, "Plan: 1GB/3GB/10GB/30GB (item mobile) or org_share.", enum=PLANS, rule="R-63"),
))
PS_PLAN = Body("PsPlanChange", (Field("plan", str, "The plan from next month.", enum=PLANS, rule="R-64"),))
PS_PACKS = Body("PsPacksChange", (Field("packs", int, "1 GB packs from next month.", minimum=1, rule="R-64"),))
PS_TERMINATION = Body("PsTermination", (
    Field("requested_date", str, "Date asked for; the end is the later of it and notice + 30 days.", is_date=True,
          rule="R-61"),
))
PS_CARD = Body("PsCardChange", (
    Field("reason", str, "sim_change (SIM type change) or reissue (lost or broken multi-FF card).",
          enum=("sim_change", "reissue"), rule="R-65"),
    Field("iccid", str, "ICCID of the new card.", is_id=True),
    Field("imsi", str, "IMSI of the new card.", is_id=True),
    Field("sim_type", str, "SIM type of the new card.", enum=SIM_TYPES, rule="R-61"),
))
PS_OPTIONS = Body("PsPairOptions", (
    Field("call_flat", bool, "Call flat-rate option on both lines (voice only).", rule="R-65"),
    Field("disaster_priority", str, "Disaster-priority calling on line D, K, or none.", enum=DISASTER_CHOICES,
          rule="R-65"),
))


def _side(prefix: str, side: str) -> tuple[Field, ...]:
    return (
        Field(f"{prefix}_msisdn", str, f"Phone number of the type {side} line.", is_id=True, rule="R-61"),
        Field(f"{prefix}_iccid", str, f"ICCID of the type {side} line's card.", is_id=True),
        Field(f"{prefix}_imsi", str, f"IMSI of the type {side} line's card.", is_id=True),
        Field(f"{prefix}_sim_type", str, "SIM type.", enum=SIM_TYPES, rule="R-61"),
        Field(f"{prefix}_ipv4", str, "Fixed IPv4 address.", rule="R-62"),
        Field(f"{prefix}_ipv6_prefix", str, "Fixed IPv6 prefix, e.g. 2001:db8:1::/64.", rule="R-62"),
    )


NEW_PS_PAIR = Body("NewPsPair", (
    Field("id", str, "Pair id.", is_id=True),
    Field("group_id", str, "The group both lines join.", is_id=True, rule="R-60"),
    *_side("d", "D"), *_side("k", "K"),
    Field("call_flat", bool, "Call flat-rate option on both lines (voice only).", rule="R-65"),
    Field("disaster_priority", str, "Disaster-priority calling on line D, K, or none.", enum=DISASTER_CHOICES,
          rule="R-65"),
))

Op = Callable[[Api, web.Request, Principal], Awaitable[web.Response]]


def refusals(handler: Op) -> Handler:
    """Turn a rule's refusal into the API's 4xx naming the field and the rule."""

    @wraps(handler)
    async def run(api: Api, request: web.Request, principal: Principal) -> web.Response:
        try:
            return await handler(api, request, principal)
        except RuleError as exc:
            if exc.kind == "notfound":
                raise not_found(exc.message, exc.field, exc.rule) from None
            if exc.kind == "conflict":
                raise ApiError(409, "conflict", exc.message, field=exc.field, rule=exc.rule) from None
            raise unprocessable("rule_violation", exc.message, exc.field, exc.rule) from None
        except ValueError as exc:  # an id the key schema refuses
            raise bad_request("invalid_id", str(exc)) from None

    return run


def _store(api: Api) -> PublicSafetyStore:
    return PublicSafetyStore(api.store.client, api.config.quota.timezone)


def _today(api: Api) -> dt.date:
    return _store(api).today(api.now())


def _param(request: web.Request, name: str) -> str:
    return schemas.check_id(request.match_info[name], name)


def _month(request: web.Request) -> str:
    month = request.match_info["month"]
    if not MONTH_RE.fullmatch(month):
        raise bad_request("invalid_month", "month must be YYYY-MM", "month")
    return month


async def _contract_response(api: Api, parent: Parent, status: int = 200) -> web.Response:
    return web.json_response(views.contract(parent, _today(api)), status=status)


async def _scheduled(api: Api, parent: Parent, month: str) -> web.Response:
    return web.json_response({"effective_month": month, "contract": views.contract(parent, _today(api))})


async def create_contract(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST /v1/public-safety/contracts (R-60, R-63)."""
    body = NEW_PS_CONTRACT.validate(await schemas.read_json(request))
    parent = changes.new_parent(body["id"], body["item"], body["packs"], _today(api))
    await _store(api).create(parent)
    response = await _contract_response(api, parent, 201)
    response.headers["Location"] = f"{BASE}/contracts/{parent.id}"
    return response


async def get_contract(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """GET /v1/public-safety/contracts/{contract_id}."""
    return await _contract_response(api, await _load(api, _param(request, "contract_id")))


async def _load(api: Api, contract_id: str) -> Parent:
    try:
        return await _store(api).load(contract_id)
    except NotFound:
        raise not_found(f"no public-safety contract {contract_id}", "contract_id", "R-60") from None


async def _change(api: Api, contract_id: str, fn: Callable[[Parent], Parent], claims: bool = False) -> Parent:
    await _load(api, contract_id)  # a 404 of its own before any rule
    return await _store(api).change(contract_id, fn, new_claims if claims else None)


async def add_group(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST .../contracts/{contract_id}/groups (R-60, R-63)."""
    contract_id = _param(request, "contract_id")
    body = NEW_PS_GROUP.validate(await schemas.read_json(request))
    today = _today(api)
    parent = await _change(api, contract_id, partial(changes.add_group, group_id=body["id"], kind=body["kind"],
                                                     plan=body["plan"], today=today))
    return await _contract_response(api, parent, 201)


def _spec(body: dict[str, Any], prefix: str) -> LineSpec:
    return LineSpec(msisdn=body[f"{prefix}_msisdn"], iccid=body[f"{prefix}_iccid"], imsi=body[f"{prefix}_imsi"],
                    sim_type=body[f"{prefix}_sim_type"], ipv4=body[f"{prefix}_ipv4"],
                    ipv6_prefix=body[f"{prefix}_ipv6_prefix"])


async def add_pair(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST .../contracts/{contract_id}/pairs: a type D and a type K line together (R-61, R-62)."""
    contract_id = _param(request, "contract_id")
    body = NEW_PS_PAIR.validate(await schemas.read_json(request))
    app = PairApplication(pair_id=body["id"], group_id=body["group_id"], d=_spec(body, "d"), k=_spec(body, "k"),
                          call_flat=body["call_flat"], disaster=body["disaster_priority"])
    parent = await _change(api, contract_id, partial(changes.add_pair, app=app, today=_today(api)), claims=True)
    return await _contract_response(api, parent, 201)


async def change_plan(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """PUT .../groups/{group_id}/plan: from next month; refused on a month's last day (R-64)."""
    contract_id, group_id = _param(request, "contract_id"), _param(request, "group_id")
    plan = PS_PLAN.validate(await schemas.read_json(request))["plan"]
    today = _today(api)
    month = [""]

    def apply(parent: Parent) -> Parent:
        parent, month[0] = changes.change_plan(parent, group_id, plan, today)
        return parent

    return await _scheduled(api, await _change(api, contract_id, apply), month[0])


async def change_packs(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """PUT .../contracts/{contract_id}/packs: from next month; refused on a month's last day (R-64)."""
    contract_id = _param(request, "contract_id")
    packs = PS_PACKS.validate(await schemas.read_json(request))["packs"]
    today = _today(api)
    month = [""]

    def apply(parent: Parent) -> Parent:
        parent, month[0] = changes.change_packs(parent, packs, today)
        return parent

    return await _scheduled(api, await _change(api, contract_id, apply), month[0])


async def terminate_contract(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST .../contracts/{contract_id}/termination: groups and lines end the same day (R-60, R-61)."""
    contract_id = _param(request, "contract_id")
    requested = PS_TERMINATION.validate(await schemas.read_json(request))["requested_date"]
    today = _today(api)
    parent = await _change(api, contract_id, lambda p: changes.terminate_parent(p, today, requested))
    return await _contract_response(api, parent)


async def terminate_group(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST .../groups/{group_id}/termination: its lines end the same day (R-60, R-61)."""
    contract_id, group_id = _param(request, "contract_id"), _param(request, "group_id")
    requested = PS_TERMINATION.validate(await schemas.read_json(request))["requested_date"]
    today = _today(api)
    parent = await _change(api, contract_id, lambda p: changes.terminate_group(p, group_id, today, requested))
    return await _contract_response(api, parent)


async def _line_contract(api: Api, request: web.Request) -> tuple[str, str]:
    msisdn = _param(request, "msisdn")
    raw = await api.store.client.get(k.msisdn_index(msisdn))
    found = k.parse_index(raw.decode() if isinstance(raw, bytes) else str(raw)) if raw is not None else None
    if found is None or not await api.store.client.exists(f"{k.PREFIX}:{k.tag(found[0])}:ps"):
        raise not_found(f"no public-safety line {msisdn}", "msisdn", "R-61")
    return found


async def terminate_line(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST /v1/public-safety/lines/{msisdn}/termination: the partner ends at that month's end (R-61)."""
    contract_id, msisdn = await _line_contract(api, request)
    requested = PS_TERMINATION.validate(await schemas.read_json(request))["requested_date"]
    today = _today(api)
    parent = await _change(api, contract_id, lambda p: changes.terminate_line(p, msisdn, today, requested))
    return await _contract_response(api, parent)


async def change_card(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """POST /v1/public-safety/lines/{msisdn}/card: SIM type change or reissue, with its fee (R-65)."""
    contract_id, msisdn = await _line_contract(api, request)
    body = PS_CARD.validate(await schemas.read_json(request))
    today = _today(api)
    parent = await _change(api, contract_id, lambda p: changes.change_card(
        p, msisdn, body["iccid"], body["imsi"], body["sim_type"], body["reason"], today), claims=True)
    return await _contract_response(api, parent)


async def set_options(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """PUT .../pairs/{pair_id}/options: call flat-rate on both lines, disaster priority on one (R-65)."""
    contract_id, pair_id = _param(request, "contract_id"), _param(request, "pair_id")
    body = PS_OPTIONS.validate(await schemas.read_json(request))
    today = _today(api)
    effective = [rules.month_of(today)]

    def apply(parent: Parent) -> Parent:
        pair = parent.pair(pair_id)
        if pair is not None and pair.call_flat.steps[-1][1] != body["call_flat"]:
            parent, effective[0] = changes.set_call_flat(parent, pair_id, body["call_flat"], today)
        return changes.set_disaster(parent, pair_id, body["disaster_priority"], today)

    parent = await _change(api, contract_id, apply)
    return await _scheduled(api, parent, effective[0])


async def usage(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """GET .../contracts/{contract_id}/usage/{month}: used, capacity and excess per group (R-63)."""
    contract_id, month = _param(request, "contract_id"), _month(request)
    parent = await _load(api, contract_id)
    used = await _store(api).month_usage(contract_id, month)
    groups = []
    for g in parent.groups:
        cap = billing.capacity_bytes(parent, g.id, month)
        u = used.get(g.id, 0)
        groups.append({"group_id": g.id, "used_bytes": u, "capacity_bytes": cap,
                       "excess_bytes": max(0, u - cap) if parent.item == "mobile" else 0})
    return web.json_response({"contract_id": contract_id, "month": month, "groups": groups,
                              "excess_bytes": billing.excess_bytes(parent, month, used)})


async def get_statement(api: Api, request: web.Request, principal: Principal) -> web.Response:
    """GET /v1/contracts/{contract_id}/statements/{month}: the monthly statement (R-65)."""
    contract_id, month = _param(request, "contract_id"), _month(request)
    parent = await _load(api, contract_id)
    used = await _store(api).month_usage(contract_id, month)
    return web.json_response(views.statement(billing.statement(parent, month, used, api.config.publicsafety)))


def _route(method: str, path: str, handler: Op, summary: str, **kw: Any) -> Route:
    return Route(method, path, refusals(handler), summary, operator_only=True, **kw)


C = f"{BASE}/contracts/{{contract_id}}"
PUBLIC_SAFETY_ROUTES: tuple[Route, ...] = (
    _route("POST", f"{BASE}/contracts", create_contract, "Create a public-safety parent contract (R-60, R-63)",
           body=NEW_PS_CONTRACT, status=201, response="PsContract", conflicts=True),
    _route("GET", C, get_contract, "A public-safety contract tree (R-60)", response="PsContract"),
    _route("POST", f"{C}/groups", add_group, "Add a line group with its plan (R-60, R-63)", body=NEW_PS_GROUP,
           status=201, response="PsContract", conflicts=True),
    _route("POST", f"{C}/pairs", add_pair, "Add a type D + type K line pair with fixed addresses (R-61, R-62)",
           body=NEW_PS_PAIR, status=201, response="PsContract", conflicts=True),
    _route("PUT", f"{C}/groups/{{group_id}}/plan", change_plan, "Change a group's plan from next month (R-64)",
           body=PS_PLAN, response="PsScheduledChange", conflicts=True),
    _route("PUT", f"{C}/packs", change_packs, "Change the org packet share packs from next month (R-64)",
           body=PS_PACKS, response="PsScheduledChange", conflicts=True),
    _route("PUT", f"{C}/pairs/{{pair_id}}/options", set_options, "A pair's options (R-65)", body=PS_OPTIONS,
           response="PsScheduledChange", conflicts=True),
    _route("POST", f"{C}/termination", terminate_contract, "Terminate the contract, its groups and lines (R-60)",
           body=PS_TERMINATION, response="PsContract", conflicts=True),
    _route("POST", f"{C}/groups/{{group_id}}/termination", terminate_group, "Terminate a group and its lines (R-60)",
           body=PS_TERMINATION, response="PsContract", conflicts=True),
    _route("POST", f"{BASE}/lines/{{msisdn}}/termination", terminate_line,
           "Terminate a line; its pair partner ends at that month's end (R-61)", body=PS_TERMINATION,
           response="PsContract", conflicts=True),
    _route("POST", f"{BASE}/lines/{{msisdn}}/card", change_card, "SIM type change or card reissue (R-65)",
           body=PS_CARD, response="PsContract", conflicts=True),
    _route("GET", f"{C}/usage/{{month}}", usage, "Usage, capacity and excess per group in a month (R-63)",
           response="PsUsage"),
    _route("GET", "/v1/contracts/{contract_id}/statements/{month}", get_statement,
           "Monthly statement of a public-safety contract (R-65)", response="Statement"),
)
