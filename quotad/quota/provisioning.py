"""Provisioning: contracts, lines, cards, coupons and line switches, for the API and the CLI.

Each change is one script on the contract's slot (quota.lua names their KEYS and ARGV). A change
that takes numbers or cards claims their index keys first and commits them after (quota.lineindex),
so a duplicate is refused whole, naming the field.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time

from quotad.policy.plans import PlanCatalog
from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.errors import Conflict, NotFound, QuotaError, check
from quotad.quota.lineindex import LineIndex
from quotad.quota.model import CARD_REASONS, STATUSES, Bucket, CardActivation, LineFacts, LineRef
from quotad.quota.runner import ScriptRunner


class Provisioning:
    """Changes to contracts and lines (SPEC §3, §5), on the runner's scripts."""

    def __init__(self, runner: ScriptRunner, index: LineIndex, catalog: PlanCatalog) -> None:
        self.runner = runner
        self.index = index
        self.settings = index.settings
        self.calendar = runner.calendar
        self.catalog = catalog

    async def create_contract(self, contract_id: str, plan: str, start_date: dt.date, now: float) -> None:
        """Create a contract on a plan; R-10: its start month's bundle is pro-rated."""
        k.check_id(contract_id, "contract_id")
        try:
            p = self.catalog.get(plan)
        except KeyError:
            raise NotFound(f"unknown plan {plan!r}", field="plan", rule="§3") from None
        ck = k.ContractKeys(contract_id)
        args = lua.create_contract_argv(
            repr(float(now)), self.calendar.month(now), p.name, cal.date_key(start_date),
            cal.month_key_of(start_date.year, start_date.month),
            cal.prorated_bundle(p.bundle_bytes, start_date), p.bundle_bytes, p.max_lines)
        res = await self.runner.run("create_contract", ck.pool_keys(), args)
        check(res, None, f"contract {contract_id} exists")

    async def add_line(
        self, contract_id: str, msisdn: str, iccid: str, imsi: str, card_type: str = "nano",
        voice: bool = False, now: float | None = None,
    ) -> LineRef:
        """Add a line. Refused whole on a duplicate MSISDN/ICCID/IMSI or past the plan's line limit.

        The index keys live in other slots, so they are claimed first (pending, with a short
        expiry), the line is written by one script on the contract slot, and the claims are then
        committed — or released if anything failed: nothing is left half-written.
        """
        for value, what in ((contract_id, "contract_id"), (msisdn, "msisdn"), (iccid, "iccid"),
                            (imsi, "imsi")):
            k.check_id(value, what)
        now = time.time() if now is None else now
        pending = k.index_value(contract_id, msisdn, secrets.token_hex(8))
        claims = [(k.msisdn_index(msisdn), "msisdn"), (k.iccid_index(iccid), "iccid"),
                  (k.imsi_index(imsi), "imsi")]
        claimed = await self.index.claim(claims, pending)
        try:
            await self._write_line(contract_id, msisdn, iccid, imsi, card_type, voice, now)
        except BaseException:
            await self.index.release(claimed, pending)
            raise
        await self.index.commit(claimed, pending, k.index_value(contract_id, msisdn))
        self.index.forget(*(key for key, _ in claims))
        return LineRef(contract_id, msisdn)

    async def add_card(
        self, ref: LineRef, iccid: str, imsi: str, card_type: str, reason: str, now: float | None = None
    ) -> LineFacts:
        """R-32/R-33: register the line's next card, pending until activate_card.

        Its ICCID and IMSI are claimed in the index at once (a duplicate is refused, naming the
        field), so they resolve to the line; the attach script still refuses the new IMSI as
        card_pending until activation. A lost or broken card's line is suspended meanwhile
        (R-33); for a type change the old card works until then (R-32). One pending card a line.
        """
        k.check_id(iccid, "iccid")
        k.check_id(imsi, "imsi")
        if reason not in CARD_REASONS:
            raise QuotaError(f"reason must be one of {CARD_REASONS}", field="reason", rule="R-32")
        now = time.time() if now is None else now
        pending = k.index_value(ref.contract_id, ref.msisdn, secrets.token_hex(8))
        claims = [(k.iccid_index(iccid), "iccid"), (k.imsi_index(imsi), "imsi")]
        claimed = await self.index.claim(claims, pending)
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self.calendar.day_keys(ref, now)]
        args = lua.add_card_argv(repr(float(now)), self.calendar.month(now), iccid, imsi, card_type, reason,
                                 int(reason != "type-change"))
        try:
            res = await self.runner.run("add_card", keys, args)
            refused = lua.refusal(res)
            if refused is not None and refused.kind == "conflict" and refused.field == "iccid":
                raise Conflict(f"line {ref.msisdn} already has a pending card {refused.detail}; activate it first",
                               field="iccid", rule="R-32")
            check(res, "R-32", f"no new card for {ref.msisdn}")
        except BaseException:
            await self.index.release(claimed, pending)
            raise
        await self.index.commit(claimed, pending, k.index_value(ref.contract_id, ref.msisdn))
        self.index.forget(*(key for key, _ in claims))
        return lua.facts(res[1])

    async def activate_card(self, ref: LineRef, iccid: str, now: float | None = None) -> CardActivation:
        """R-32/R-33: the pending card becomes the line's card; the old one is refused from now on.

        Held data, usage history, switch and sessions stay with the line (the caller drops the
        old card's sessions). The old ICCID/IMSI stay in the index, retired: they still name the
        line, whose attach script refuses the old IMSI (card_replaced), in every process at once
        whatever its cache holds; and they cannot be claimed by another line. Activating the
        line's current card again changes nothing (``old`` is None).
        """
        k.check_id(iccid, "iccid")
        now = time.time() if now is None else now
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self.calendar.day_keys(ref, now)]
        args = lua.activate_card_argv(repr(float(now)), self.calendar.month(now), iccid)
        res = check(await self.runner.run("activate_card", keys, args), "R-32",
                          f"card {iccid} of {ref.msisdn} not activated")
        card, old, reason, facts = lua.activate_card_reply(res)
        if old is None:
            return CardActivation(card=card, old=None, reason="", facts=facts)
        final = k.index_value(ref.contract_id, ref.msisdn)
        for key in (k.iccid_index(card.iccid), k.imsi_index(card.imsi)):
            # Normally committed by add_card; restored here if add_card died before committing.
            await self.runner.client.set(key, final, nx=True)
        gone = [k.iccid_index(old.iccid), k.imsi_index(old.imsi)]
        # Retired, not deleted: the old card stays tied to its line (an attach with it is refused
        # as card_replaced) and its ICCID/IMSI can never be given to another line.
        await self.index.compare_and_set(gone, final, k.index_value(ref.contract_id, ref.msisdn, k.RETIRED))
        self.index.forget(*gone, k.iccid_index(card.iccid), k.imsi_index(card.imsi))
        return CardActivation(card=card, old=old, reason=reason, facts=facts)

    async def replace_card(self, ref: LineRef, iccid: str, imsi: str, card_type: str = "nano") -> CardActivation:
        """R-32: a new card replaces the line's card at once (add_card, then activate_card)."""
        await self.add_card(ref, iccid, imsi, card_type, "type-change")
        return await self.activate_card(ref, iccid)

    async def _write_line(
        self, contract_id: str, msisdn: str, iccid: str, imsi: str, card_type: str, voice: bool, now: float
    ) -> None:
        ck = k.ContractKeys(contract_id)
        keys = [*ck.pool_keys(), ck.lines, ck.line(msisdn)]
        args = lua.add_line_argv(repr(float(now)), self.calendar.month(now), msisdn, iccid, imsi, card_type, int(voice))
        res = await self.runner.run("add_line", keys, args)
        check(res, "§3", f"line {msisdn} not added to {contract_id}")

    async def charge(self, contract_id: str, units: int, who: str, now: float) -> Bucket:
        """R-11: buy units of 100 MB; at most 30 a calendar month, a purchase passing it refused whole."""
        if not isinstance(units, int) or units < 1:
            raise QuotaError("units must be a whole number of 1 or more", field="units", rule="R-11")
        s = self.settings
        ck = k.ContractKeys(contract_id)
        expiry = cal.coupon_expiry(now, s.timezone)
        entry = json.dumps({"at": now, "units": units, "who": who}, separators=(",", ":"))
        cutoff = now - s.charge_history_days * 86400
        args = lua.charge_argv(repr(float(now)), self.calendar.month(now), units, s.max_units_per_month,
                               s.coupon_unit_bytes, repr(expiry), entry, repr(cutoff))
        res = check(await self.runner.run("charge", [*ck.pool_keys(), ck.charges], args), "R-11",
                          f"charge of {units} units to {contract_id} refused")
        bucket_id, size = lua.charge_reply(res)
        return Bucket(id=bucket_id, kind="coupon", size=size, left=size, expires_at=expiry)

    async def set_coupon(self, ref: LineRef, on: bool, now: float | None = None) -> LineFacts:
        """R-21/R-31: flip a line's coupon switch; returns the line's facts."""
        return await self._set_line(ref, "coupon", "1" if on else "0", now, "R-31")

    async def set_status(self, ref: LineRef, status: str, now: float | None = None) -> LineFacts:
        """R-30: suspend / resume (or terminate) a line; returns the line's facts."""
        if status not in STATUSES:
            raise QuotaError(f"status must be one of {STATUSES}", field="status", rule="R-30")
        return await self._set_line(ref, "status", status, now, "R-30")

    async def _set_line(
        self, ref: LineRef, field: str, value: str, now: float | None, rule: str
    ) -> LineFacts:
        now = time.time() if now is None else now
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self.calendar.day_keys(ref, now)]
        args = lua.set_line_argv(repr(float(now)), self.calendar.month(now), field, value)
        res = await self.runner.run("set_line", keys, args)
        refused = lua.refusal(res)
        if refused is not None and refused.detail == "card_pending":
            raise Conflict(f"line {ref.msisdn} waits for its replacement card: activate the new card to resume it",
                           field="status", rule="R-33")
        check(res, rule, f"cannot set {field} of {ref.msisdn}")
        return lua.facts(res[1])
