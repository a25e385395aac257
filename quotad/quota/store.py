"""QuotaStore: the quota state in Redis, and the request path on it.

QuotaStore itself is the request path, what the RADIUS side calls (aaa/): attach (R-3, R-12),
accounting (R-16, R-17, R-71), address leases (R-5, quota.leases), sessions (their CoA targets,
their ends without a Stop), a line's facts and the compare-and-set of its speed. Beside it, on the
same script runner (quota.runner) and card index (quota.lineindex): ``provisioning``
(quota.provisioning: contracts, lines, cards, coupons, switches) and ``views`` (quota.views: what
the API shows). Every state change is one Lua script (quota.lua names each one's KEYS and ARGV).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from typing import Any

from quotad.policy.plans import PlanCatalog
from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota import lua, steady
from quotad.quota.errors import QuotaError, no_line
from quotad.quota.leases import AddressLeases, address_int, address_text
from quotad.quota.lineindex import LineIndex
from quotad.quota.model import (
    ACCT_START,
    ACCT_STOP,
    SPEEDS,
    AccountingReport,
    AccountResult,
    AttachRequest,
    AttachResult,
    Card,
    LineFacts,
    LineRef,
    QuotaSettings,
    ReportOutcome,
    Session,
    precheck,
)
from quotad.quota.provisioning import Provisioning
from quotad.quota.resp import Encoded
from quotad.quota.runner import ClockRun, LineKeys, PipelinedClient, RedisClient, ScriptRunner, line_keys, session_run
from quotad.quota.views import QuotaViews

# The scripts this store runs (quota.lua: their KEYS, ARGV, replies and the files prepended).
SCRIPTS = ("create_contract", "add_line", "attach", "account", "line_facts", "set_line", "charge", "view",
           "add_card", "activate_card", "top_up", "set_speed", "index_cas", "prune_live", "ip_alloc", "ip_renew",
           "ip_release", "ip_adopt", "end_session", "drop_placeholder")
SPEED_VALUES = (*SPEEDS, "")  # "" = never decided


class QuotaStore:
    """Contracts, lines, pools, sessions and address leases, in Redis: the request path, with
    ``provisioning`` and ``views`` beside it."""

    def __init__(self, client: RedisClient, settings: QuotaSettings, catalog: PlanCatalog,
                 fast: PipelinedClient | None = None) -> None:
        """``fast``: an optional pipelining client (quota.fastredis.FastRedis) for the hot path's
        scripts and index lookups on a single Redis; everything else goes through ``client``."""
        self.client = client
        self.fast = fast  # the runner's too: an attribute, not a property, for the hot path
        self.settings = settings
        self.catalog = catalog
        self.runner = ScriptRunner(client, settings, SCRIPTS, fast)
        self.calendar = self.runner.calendar
        self.index = LineIndex(self.runner, settings)
        self.leases = AddressLeases(self.runner, settings)
        self.provisioning = Provisioning(self.runner, self.index, catalog)
        self.views = QuotaViews(self.runner)
        # The request path's lookup is the index's own method: no call in between on the hot path.
        self.find_line = self.index.find_line
        # Runs of arguments encoded once for the hot path's script calls: the clock with the
        # settings that never change (once a second), each line's keys (once a day and session),
        # each gateway's (nas, gw).
        self._attach_clock = ClockRun(self.calendar, settings.slice_bytes, settings.session_ttl_seconds, today=True)
        self._account_clock = ClockRun(self.calendar)  # account.lua's settings are constants (lua.constants)
        self._lines: dict[tuple[str, str], LineKeys] = {}
        self._gateways: dict[tuple[str, str], Encoded] = {}
        # (contract, msisdn, slot) → the slot's latest session, as this process last saw it
        # (attach.lua corrects a stale one); bounded like the index cache.
        self._slots: dict[tuple[str, str, str], str] = {}
        # Session generations (attach.lua): unique across processes and hosts sharing the Redis.
        self._generation_prefix = secrets.token_hex(4)
        self._generations = itertools.count(1)

    async def load_scripts(self) -> None:
        """Load every script into Redis (all primaries on a cluster)."""
        await self.runner.load_scripts()

    async def scripts_loaded(self) -> bool:
        """True if Redis holds every script; if not, loads them (Redis restarted without them)."""
        return await self.runner.scripts_loaded()

    async def ping(self) -> bool:
        """True if Redis answers."""
        return await self.runner.ping()

    async def close(self) -> None:
        """Close the client's connections."""
        await self.runner.close()

    def _keys(self, ref: LineRef, now: float) -> LineKeys:
        """The line's script keys of today (runner.LineKeys), made once a line and day."""
        days = self.calendar.window(now)
        line = (ref.contract_id, ref.msisdn)
        memo = self._lines.get(line)
        if memo is None or memo["day"] != days[0]:
            if len(self._lines) >= self.settings.index_cache_entries:
                self._lines.clear()
            memo = self._lines[line] = line_keys(ref, days)
        return memo

    def _gateway(self, nas: str, gateway: str) -> Encoded:
        """ARGV nas, gw encoded once per gateway."""
        run = self._gateways.get((nas, gateway))
        if run is None:
            if len(self._gateways) >= 10_000:
                self._gateways.clear()
            run = self._gateways[nas, gateway] = Encoded(nas, gateway)
        return run

    async def attach(self, req: AttachRequest) -> AttachResult:
        """R-3/R-12: check the line, record the session, draw a slice if it holds less than one,
        and lease an address (R-5) on the IP pool's slot; a refused attach holds none.

        On the fast path both scripts go out together (one round trip); a refused attach then
        gives its address back. A re-authorization of a session this process leased an address
        to within a quarter lease sends the attach script alone (quota.renewals).

        A request with a slot (it named no session) goes to the slot's latest session, which this
        process remembers (attach.lua says when it guessed wrong, and which it is)."""
        if not req.slot:
            return await self._attach(req, req.session_id)
        memo = (req.ref.contract_id, req.ref.msisdn, req.slot)
        guess = self._slots.get(memo, req.session_id)
        for _ in range(3):
            result = await self._attach(req, guess)
            if result.reason != "retry":
                break
            guess = result.session_id
        if result.ok:
            if len(self._slots) >= self.settings.index_cache_entries:
                self._slots.clear()
            self._slots[memo] = result.session_id
        return result

    async def _attach(self, req: AttachRequest, sid: str) -> AttachResult:
        line = self._keys(req.ref, req.now)
        run = session_run(line, sid)
        owner = line["owner"]
        keys: list[Any] | Encoded = [run, line["session_prefix"] + req.session_id] if req.slot else run
        noted, epoch = self.leases.noted(owner, req.now)
        clock = self._attach_clock.at(req.now)
        # A re-authorization of a session whose address this process noted: from reads alone when
        # it changes nothing (quota.steady); else the script.
        reply = None if noted is None else await self._steady(req, line, clock, sid, noted[1])
        if reply is None:
            args = lua.attach_argv(
                clock, int(req.check_identity), req.imsi or "", self._gateway(req.nas_ip, req.gateway), sid,
                f"{self._generation_prefix}.{next(self._generations)}", noted[1] if noted else "",
                req.acct_session_id, req.slot, req.session_id)
        if reply is not None:
            ip = noted[0] if noted and reply.same else None
        elif noted is None and not req.slot:
            lease = self.leases.alloc_call(owner, req.now)
            res, ip = await self.runner.pair(("attach", keys, args), lease, sequential=True)
            reply = lua.attach_reply(res)
        else:  # a slot's session is known once the script has run: its lease is taken after
            res, _ = await self.runner.pair(("attach", keys, args), None)
            reply = lua.attach_reply(res)
            ip = noted[0] if noted and reply.same else None
        if reply.status == "retry":
            return AttachResult(ok=False, reason="retry", facts=None, granted=0, framed_ip=None,
                                session_id=reply.session_id)
        if reply.status == "ok" and reply.session_id != sid:  # a new session of the slot
            sid, noted, ip = reply.session_id, None, None
            owner = k.session_owner(req.ref.contract_id, req.ref.msisdn, sid)
        if reply.status != "ok":
            if ip is not None or noted is not None:
                await self.leases.release(owner)
            return AttachResult(ok=False, reason=reply.status, facts=None, granted=0, framed_ip=None)
        granted, facts = reply.granted, reply.facts
        if ip is None and (noted is not None or req.slot):  # not the noted session: lease as usual
            ip = await self.runner.run(*self.leases.alloc_call(owner, req.now))
            noted = None
        if ip is None:
            # No address, no session: forget it again (the slice drawn stays the line's own, R-13).
            self.leases.renewals.forget(owner)
            await self._end(req.ref, sid, req.now)
            return AttachResult(ok=False, reason="no_address", facts=facts, granted=granted, framed_ip=None)
        if reply.new and req.gateway:
            await self.runner.command("SADD", k.gateway_sessions(req.gateway), owner)
        if noted is None:
            ip = lua.text(ip)
            if self.fast is not None and self.fast.epoch == epoch:
                self.leases.renewals.renewed(owner, req.now, ip, reply.generation)
            else:
                self.leases.renewals.renewed(owner, req.now)
        return AttachResult(ok=True, reason=None, facts=facts, granted=granted, framed_ip=address_text(int(ip)),
                            session_id=sid)

    async def _steady(self, req: AttachRequest, line: LineKeys, clock: Encoded, sid: str,
                      expected_gen: str) -> lua.AttachReply | None:
        """attach.lua's reply from one snapshot of reads when it would change nothing, else None
        (quota.steady); the reads encoded once per line (and slot) and session."""
        assert self.fast is not None
        if line["reads_slot"] != req.slot:
            line["contract_read"] = steady.contract_read(line["contract"])
            line["line_read"] = steady.line_read(line["line"], req.slot)
            line["reads_slot"] = req.slot
        if line["read_sid"] != sid:
            line["session_read"] = steady.session_read(line["session"])
            line["read_sid"] = sid
        snapshot = await self.fast.transaction(line["contract_read"], line["line_read"], line["session_read"])
        now, month, _, _, _, today, slice_bytes, ttl = clock.values
        return steady.answer(snapshot, now, int(month), today, slice_bytes, ttl, req.imsi or "", req.nas_ip, sid,
                             req.slot, expected_gen, req.check_identity)

    def _account_args(self, report: AccountingReport) -> list[Any]:
        event = report.at  # exact: a report is judged stale against the session's latest by it
        return lua.account_argv(
            self._account_clock.at(report.now), self._gateway(report.nas_ip, report.gateway), report.session_id,
            report.status, report.octets, report.exempt_octets, report.framed_ip or "", report.acct_session_id,
            int(event) if event.is_integer() else repr(event),
            "" if report.session_time is None else report.session_time)

    async def account(self, report: AccountingReport) -> AccountResult:
        """R-16/R-17/R-71: count a report's new usage once and put it where the line's speed says,
        on the Japan day of its event; renew the session's address lease on Start/Interim, release
        it on Stop (R-5). A report that cannot be counted safely changes nothing (its outcome says
        why: model.ReportOutcome)."""
        refused = precheck(report, self.settings.stopped_ttl_seconds)
        if refused is not None:
            facts = await self.line_facts(report.ref, report.now)
            return AccountResult(facts=facts, added=0, debited=0, low_added=0, overrun_added=0, granted=0,
                                 outcome=refused)
        line = self._keys(report.ref, report.now)
        run = session_run(line, report.session_id)
        owner = line["owner"]
        start, end, _ = self.calendar.days  # today's bounds, as the window keys just made them
        # event_day (quota.lua): today's usage key (day0) unless the event was on another day.
        keys = [run, line["today"] if report.event_time is None or start <= report.at < end
                else k.ContractKeys(report.ref.contract_id).usage(
                    report.ref.msisdn, cal.day_key(report.at, self.settings.timezone))]
        # The lease's holder is read in the same round trip as the count; its script runs only
        # for an address held (leases.holder_read).
        holder = self.leases.holder_read(owner) if self.leases.renewal_due(report, owner) else None
        # The gateway's set of sessions is joined at a Start and left at a Stop, in the same
        # round trip (both are idempotent; a session first named by an Interim joins after).
        member = None
        if report.gateway and report.status in (ACCT_START, ACCT_STOP):
            member = ("SADD" if report.status == ACCT_START else "SREM", k.gateway_sessions(report.gateway), owner)
        fast = self.fast
        held = fast.call(*holder) if holder is not None and fast is not None else None
        noted = fast.call(*member) if member and fast is not None else None
        res = await self.runner.run("account", keys, self._account_args(report))
        if noted is not None:
            await noted
        elif member is not None:
            await self.runner.command(*member)
        renewed = None
        if holder is not None:
            address = await held if held is not None else await self.runner.command(*holder)
            if address is not None:
                renewed = await self.runner.run(*self.leases.renew_call(owner, report.now))
            # Renewed, or no lease to renew: a lease made later by an attach starts at full length.
            if renewed is None:
                self.leases.renewals.forget(owner)
            self.leases.renewals.renewed(owner, report.now)
        result = lua.account_reply(res)
        if result is None:
            raise no_line(report.ref)
        if result.outcome is ReportOutcome.COUNTED and (result.fresh or report.status == ACCT_STOP):
            await self._after_count(report, owner, fresh=result.fresh, leased=holder is None or renewed is not None)
        return result

    async def _after_count(self, report: AccountingReport, owner: str, fresh: bool, leased: bool) -> None:
        """What a counted report does on other slots once counted: a Stop releases the session's
        (``owner``'s) address; a session's first report, if it is no Start, joins its gateway's
        set, and takes over an attach's address lease when the attach named the session otherwise
        (ip_adopt.lua). Nothing for any other report."""
        if report.status == ACCT_STOP:
            await self.leases.release(owner)
            return
        if not fresh:
            return
        if report.gateway and report.status != ACCT_START:
            await self.runner.command("SADD", k.gateway_sessions(report.gateway), owner)
        address = address_int(report.framed_ip) if report.framed_ip else 0
        if leased or not self.leases.in_range(address):
            return
        line = k.session_owner(report.ref.contract_id, report.ref.msisdn, "")
        old = await self.leases.adopt(owner, report.now, address, line)
        if old:
            old_sid = old[len(line):]
            ck = k.ContractKeys(report.ref.contract_id)
            keys = [ck.live(report.ref.msisdn), ck.session(report.ref.msisdn, old_sid)]
            gw = lua.optional_text(await self.runner.run("drop_placeholder", keys, lua.drop_placeholder_argv(old_sid)))
            if gw:
                await self.runner.command("SREM", k.gateway_sessions(gw), old)

    async def _end(self, ref: LineRef, session_id: str, now: float) -> str | None:
        """End a live session counting nothing more; its gateway, or None if it was not live."""
        ck = k.ContractKeys(ref.contract_id)
        return lua.optional_text(await self.runner.run(
            "end_session", [ck.live(ref.msisdn), ck.session(ref.msisdn, session_id)],
            lua.end_session_argv(session_id, self.settings.stopped_ttl_seconds, repr(float(now)))))

    async def is_live(self, ref: LineRef, session_id: str, gateway: str) -> bool:
        """True if the session is live and runs on that gateway (a re-authorization without
        credentials names it: aaa.access)."""
        key = k.ContractKeys(ref.contract_id).session(ref.msisdn, session_id)
        rec = await self.client.hmget(key, ["stopped", "gw"])
        return lua.text(rec[0]) == "0" and lua.text(rec[1]) == gateway

    async def end_session(self, ref: LineRef, session_id: str, now: float) -> bool:
        """End one live session as a Stop would (its data stays used, its address goes back to the
        pool, its gateway forgets it), counting nothing more: the gateway said it has no such
        session (CoA NAK, Error-Cause 503). False if it was not live."""
        owner = k.session_owner(ref.contract_id, ref.msisdn, session_id)
        gw = await self._end(ref, session_id, now)
        await self.leases.release(owner)
        if gw:
            await self.runner.command("SREM", k.gateway_sessions(gw), owner)
        return gw is not None

    async def end_gateway_sessions(self, gateway: str, now: float, batch: int = 100) -> int:
        """Accounting-On/Off: the gateway restarted, so every session it ran has ended. Each ends
        as end_session says; the gateway's set is emptied as they go. Returns how many were live
        (0 when said again)."""
        key = k.gateway_sessions(gateway)
        ended = 0
        while True:
            owners = [lua.text(o) for o in await self.runner.command("SPOP", key, batch) or []]
            if not owners:
                return ended
            for owner in owners:
                contract_id, msisdn, session_id = owner.split("\t", 2)
                ref = LineRef(contract_id, msisdn)
                if await self._end(ref, session_id, now) is not None:
                    ended += 1
                await self.leases.release(owner)

    async def set_speed(self, ref: LineRef, expected: str, new: str) -> bool:
        """Compare-and-set of the line's speed class: True only for the caller that changed it."""
        if new not in SPEED_VALUES or expected not in SPEED_VALUES:
            raise QuotaError(f"speed must be one of {SPEED_VALUES}", field="speed", rule="R-24")
        ck = k.ContractKeys(ref.contract_id)
        res = int(await self.runner.run("set_speed", [ck.line(ref.msisdn)], lua.cas_argv(expected, new)))
        if res < 0:
            raise no_line(ref)
        return res == 1

    async def line_facts(self, ref: LineRef, now: float) -> LineFacts:
        """A line's facts now (after lazy maintenance of its contract)."""
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self.calendar.day_keys(ref, now)]
        args = lua.clock_argv(repr(float(now)), self.calendar.month(now))
        facts = lua.facts_reply(await self.runner.run("line_facts", keys, args))
        if facts is None:
            raise no_line(ref)
        return facts

    async def top_up(self, ref: LineRef, now: float) -> tuple[int, LineFacts]:
        """R-12 / R-24: a line back at high speed that holds less than a slice draws one now, as an
        attach would, so the CoA moving its sessions to high speed carries data to use (top_up.lua;
        nothing is drawn unless the line's speed class is `high`). Returns (octets drawn, facts)."""
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self.calendar.day_keys(ref, now)]
        args = lua.top_up_argv(repr(float(now)), self.calendar.month(now), self.settings.slice_bytes)
        topped = lua.top_up_reply(await self.runner.run("top_up", keys, args))
        if topped is None:
            raise no_line(ref)
        return topped.granted, topped.facts

    async def live_sessions(self, ref: LineRef) -> list[Session]:
        """The line's live sessions (CoA / Disconnect targets); forgets those whose record expired."""
        ck = k.ContractKeys(ref.contract_id)
        sids = sorted(lua.text(x) for x in await self.client.smembers(ck.live(ref.msisdn)))
        records = await asyncio.gather(*(self.client.hgetall(ck.session(ref.msisdn, sid)) for sid in sids))
        sessions, gone = [], []
        for sid, rec in zip(sids, records, strict=True):
            if not rec:
                gone.append(sid)
                continue
            sessions.append(await self._session(ref, sid, {lua.text(a): lua.text(b) for a, b in rec.items()}))
        if gone:
            keys = [ck.live(ref.msisdn), *(ck.session(ref.msisdn, sid) for sid in gone)]
            await self.runner.run("prune_live", keys, lua.prune_live_argv(gone))
        return sessions

    async def _session(self, ref: LineRef, sid: str, rec: dict[str, str]) -> Session:
        ip = rec.get("ip") or None
        if ip is None:
            owner = k.session_owner(ref.contract_id, ref.msisdn, sid)
            ip = await self.leases.address_of(owner)
        return Session(session_id=sid, nas_ip=rec.get("nas", ""), framed_ip=ip, imsi=rec.get("imsi") or None,
                       started=float(rec.get("started") or 0), acct_session_id=rec.get("asid") or sid)

    async def card(self, ref: LineRef) -> Card:
        """The line's current card."""
        iccid, imsi, card_type = await self.client.hmget(
            k.ContractKeys(ref.contract_id).line(ref.msisdn), ["iccid", "imsi", "card_type"])
        if iccid is None:
            raise no_line(ref)
        return Card(lua.text(iccid), lua.text(imsi), lua.text(card_type))
