"""The API's operations (SPEC §5, R-30 … R-36) over the QuotaStore, one method per route.

Scoping: a customer's token is bound to one contract; any other contract or line answers exactly
as one that does not exist (404), so ids do not leak. Each write is one store call (atomic there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from quotad import log
from quotad.api import schemas, views
from quotad.api.auth import Principal
from quotad.api.errors import ApiError, not_found, unprocessable
from quotad.config import Config
from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota.errors import NotFound
from quotad.quota.model import Card, ContractView, LineRef, LineView
from quotad.quota.store import QuotaStore

LineChange = Callable[[LineRef, str], Awaitable[None]]
HISTORY_MONTHS = 3  # the charge history of the last 3 months

_log = log.get("quotad.api")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def months_before(now: float, months: int, tz: str) -> float:
    """The same wall-clock instant `months` calendar months earlier (day clamped to month end)."""
    t = cal.local(now, tz)
    year, month = cal.add_months(t.year, t.month, -months)
    return t.replace(year=year, month=month, day=min(t.day, cal.days_in_month(year, month))).timestamp()


def _no_contract(contract_id: str) -> ApiError:
    return not_found(f"no contract {contract_id}", "contract_id", "R-35")


def _no_line(field: str, value: str) -> ApiError:
    return not_found(f"no line with {field} {value}", field, "R-35")


class Api:
    """Handlers bound to a store, the configuration, a clock and the line-change hook."""

    def __init__(self, store: QuotaStore, config: Config, now: Callable[[], float],
                 on_line_change: LineChange | None = None) -> None:
        self.store = store
        self.config = config
        self.now = now
        self.on_line_change = on_line_change
        self.tz = config.quota.timezone

    # -- lookups --------------------------------------------------------------------------------

    def _contract_id(self, request: web.Request, principal: Principal) -> str:
        contract_id = schemas.check_id(request.match_info["contract_id"], "contract_id")
        if not principal.may_see(contract_id):
            raise _no_contract(contract_id)
        return contract_id

    async def _view(self, contract_id: str) -> ContractView:
        try:
            return await self.store.views.contract_view(contract_id, self.now())
        except NotFound:
            raise _no_contract(contract_id) from None

    async def _ref(self, request: web.Request, principal: Principal) -> LineRef:
        """The line named by the path's msisdn or iccid, if the caller may see it."""
        if "iccid" in request.match_info and "msisdn" not in request.match_info:
            field, value = "iccid", schemas.check_id(request.match_info["iccid"], "iccid")
            # The store has no lookup by ICCID: read the index key it maintains (keys.py).
            raw = await self.store.client.get(k.iccid_index(value))
            found = k.parse_index(_text(raw)) if raw is not None else None
            ref = LineRef(*found) if found else None
            if ref is not None and (await self.store.card(ref)).iccid != value:
                ref = None  # a new card not yet activated: the line is not known by it yet
        else:
            field, value = "msisdn", schemas.check_id(request.match_info["msisdn"], "msisdn")
            ref = await self.store.find_line(None, value)
        if ref is None or not principal.may_see(ref.contract_id):
            raise _no_line(field, value)
        return ref

    async def _line_view(self, ref: LineRef) -> LineView:
        view = await self._view(ref.contract_id)
        for line in view.lines:
            if line.msisdn == ref.msisdn:
                return line
        raise _no_line("msisdn", ref.msisdn)

    async def _line_response(self, ref: LineRef, status: int = 200) -> web.Response:
        return web.json_response(views.line(ref.contract_id, await self._line_view(ref)), status=status)

    async def _notify(self, refs: list[LineRef], event: str) -> None:
        """Tell the session side (CoA / Disconnect, R-24, R-30); the change itself is already stored."""
        if self.on_line_change is None:
            return
        hook = self.on_line_change
        results = await asyncio.gather(*(hook(ref, event) for ref in refs), return_exceptions=True)
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, Exception):
                _log.error("line_change_hook_failed", contract_id=ref.contract_id, msisdn=ref.msisdn,
                           line_event=event, error=type(result).__name__)

    # -- contracts ------------------------------------------------------------------------------

    async def create_contract(self, request: web.Request, principal: Principal) -> web.Response:
        """POST /v1/contracts: a new contract on a plan (§3, R-10)."""
        body = schemas.NEW_CONTRACT.validate(await schemas.read_json(request))
        if body["plan"] not in self.store.catalog:
            raise unprocessable("unknown_plan", f"unknown plan {body['plan']!r}", "plan", "§3")
        await self.store.provisioning.create_contract(body["id"], body["plan"], body["start_date"], self.now())
        view = await self._view(body["id"])
        return web.json_response(views.contract(view, self.tz), status=201,
                                 headers={"Location": f"/v1/contracts/{body['id']}"})

    async def get_contract(self, request: web.Request, principal: Principal) -> web.Response:
        """GET /v1/contracts/{contract_id}: pool by bucket and lines (R-35)."""
        view = await self._view(self._contract_id(request, principal))
        return web.json_response(views.contract(view, self.tz))

    async def add_line(self, request: web.Request, principal: Principal) -> web.Response:
        """POST /v1/contracts/{contract_id}/lines: a new line (§3 line limit; unique MSISDN/ICCID/IMSI)."""
        contract_id = self._contract_id(request, principal)
        body = schemas.NEW_LINE.validate(await schemas.read_json(request))
        try:
            ref = await self.store.provisioning.add_line(contract_id, body["msisdn"], body["iccid"], body["imsi"],
                                                         body["card_type"], body["voice"], self.now())
        except NotFound as exc:
            if exc.field == "contract_id":
                raise _no_contract(contract_id) from None
            raise
        response = await self._line_response(ref, 201)
        response.headers["Location"] = f"/v1/lines/{ref.msisdn}"
        return response

    # -- charges --------------------------------------------------------------------------------

    async def charge(self, request: web.Request, principal: Principal) -> web.Response:
        """POST /v1/contracts/{contract_id}/charges: buy coupons (R-11, R-34)."""
        contract_id = self._contract_id(request, principal)
        units = schemas.CHARGE.validate(await schemas.read_json(request))["units"]
        limit = self.config.quota.max_units_per_month
        if units > limit:
            raise unprocessable("limit_exceeded", f"at most {limit} units a month", "units", "R-11")
        try:
            bucket = await self.store.provisioning.charge(contract_id, units, principal.who, self.now())
        except NotFound:
            raise _no_contract(contract_id) from None
        members = await self.store.client.smembers(k.ContractKeys(contract_id).lines)
        await self._notify([LineRef(contract_id, _text(m)) for m in sorted(members)], "charge")
        return web.json_response(views.bucket(bucket, self.tz), status=201)

    async def list_charges(self, request: web.Request, principal: Principal) -> web.Response:
        """GET /v1/contracts/{contract_id}/charges: purchases of the last 3 months, no bundles (R-35)."""
        contract_id = self._contract_id(request, principal)
        if not await self.store.client.exists(k.ContractKeys(contract_id).contract):
            raise _no_contract(contract_id)
        since = months_before(self.now(), HISTORY_MONTHS, self.tz)
        unit = self.config.quota.coupon_unit_bytes
        charges = [views.charge(c, unit, self.tz) for c in await self.store.views.charges(contract_id, since)]
        return web.json_response({"contract_id": contract_id, "since": views.iso(since, self.tz),
                                  "charges": charges})

    # -- lines ----------------------------------------------------------------------------------

    async def get_line(self, request: web.Request, principal: Principal) -> web.Response:
        """GET /v1/lines/{msisdn} and /v1/lines/by-iccid/{iccid}: one line (R-35)."""
        return await self._line_response(await self._ref(request, principal))

    async def set_coupon(self, request: web.Request, principal: Principal) -> web.Response:
        """PUT /v1/lines/{msisdn}/coupon: the coupon switch (R-21, R-31)."""
        ref = await self._ref(request, principal)
        on = schemas.COUPON.validate(await schemas.read_json(request))["on"]
        await self.store.provisioning.set_coupon(ref, on, self.now())
        await self._notify([ref], "coupon")
        return await self._line_response(ref)

    async def suspend(self, request: web.Request, principal: Principal) -> web.Response:
        """POST .../suspend: the line cannot attach; a live session is dropped (R-30)."""
        return await self._set_status(request, principal, "suspended", "suspend")

    async def resume(self, request: web.Request, principal: Principal) -> web.Response:
        """POST .../resume: the line may attach again (R-30)."""
        return await self._set_status(request, principal, "active", "resume")

    async def _set_status(self, request: web.Request, principal: Principal, status: str, event: str) -> web.Response:
        ref = await self._ref(request, principal)
        await self.store.provisioning.set_status(ref, status, self.now())
        await self._notify([ref], event)
        return await self._line_response(ref)

    # -- cards (R-32, R-33) ---------------------------------------------------------------------

    async def add_card(self, request: web.Request, principal: Principal) -> web.Response:
        """POST /v1/lines/{msisdn}/cards: the line's new card, pending until activated.

        R-32 type change: the old card works until then. R-33 lost or broken: the line is
        suspended now (its sessions dropped) and resumed when the new card is activated."""
        ref = await self._ref(request, principal)
        body = schemas.NEW_CARD.validate(await schemas.read_json(request))
        await self.store.provisioning.add_card(ref, body["iccid"], body["imsi"], body["card_type"], body["reason"],
                                               self.now())
        if body["reason"] != "type-change":
            await self._notify([ref], "suspend")
        card = Card(body["iccid"], body["imsi"], body["card_type"])
        view = views.card(ref.contract_id, card, body["reason"], "pending", None, await self._line_view(ref))
        return web.json_response(view, status=201)

    async def activate_card(self, request: web.Request, principal: Principal) -> web.Response:
        """POST /v1/lines/{msisdn}/cards/{iccid}/activate: the new card becomes the line's card;
        the old card's sessions are dropped and it is refused from now on (R-32, R-33)."""
        ref = await self._ref(request, principal)
        iccid = schemas.check_id(request.match_info["iccid"], "iccid")
        result = await self.store.provisioning.activate_card(ref, iccid, self.now())
        if result.old is not None:
            await self._notify([ref], "card")
        view = views.card(ref.contract_id, result.card, result.reason or None, "active", result.old,
                          await self._line_view(ref))
        return web.json_response(view)

    async def usage(self, request: web.Request, principal: Principal) -> web.Response:
        """GET /v1/lines/{msisdn}/usage: the 3 Japan days before today, high and low apart (R-35),
        and apart from them today's running figures (the usage counted so far today)."""
        ref = await self._ref(request, principal)
        now = self.now()
        days = cal.previous_day_keys(now, self.tz)
        today, *before = await self.store.views.line_usage(ref, [cal.day_key(now, self.tz), *days])
        return web.json_response({"contract_id": ref.contract_id, "msisdn": ref.msisdn,
                                  "today": views.today_usage(today, now, self.tz),
                                  "days": [views.usage(u) for u in before]})

