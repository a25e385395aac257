"""QuotaStore: the one class that talks to Redis.

Every state change is one Lua script call on one hash slot (see keys.py for the schema): the
contract's scripts on the contract's slot, the address leases on the IP pool's slot. Time is
computed here and passed in, so the scripts are deterministic and tests can move the clock.
Works with redis.asyncio.Redis and redis.asyncio.RedisCluster alike.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import itertools
import json
import secrets
import time
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from quotad.policy.plans import PlanCatalog
from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.fastredis import Encoded, plain
from quotad.quota.model import (
    ACCT_INTERIM,
    ACCT_START,
    ACCT_STOP,
    CARD_REASONS,
    SPEEDS,
    STATUSES,
    AccountingReport,
    AccountResult,
    AttachRequest,
    AttachResult,
    Bucket,
    Card,
    CardActivation,
    Charge,
    ContractView,
    DayUsage,
    LineFacts,
    LineRef,
    LineView,
    QuotaSettings,
    ReportOutcome,
    Session,
)
from quotad.quota.renewals import RenewalMemo

# The scripts this store runs (quota.lua: their KEYS, ARGV, replies and the files prepended).
SCRIPTS = ("create_contract", "add_line", "attach", "account", "line_facts", "set_line", "charge", "view",
           "add_card", "activate_card", "top_up", "set_speed", "index_cas", "prune_live", "ip_alloc", "ip_renew",
           "ip_release", "ip_adopt", "end_session", "drop_placeholder")
# Counters past 2^53 octets (8 PiB) lose precision in Lua's doubles: no session carries that much.
MAX_COUNTER = 1 << 53
SPEED_VALUES = (*SPEEDS, "")  # "" = never decided
Keys = list[str] | Encoded  # a script's KEYS: plain, or a fixed set encoded once (the IP pool's)


class QuotaError(Exception):
    """A refused quota operation: which input (field), which rule, and why."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule


class NotFound(QuotaError):
    """The contract or line does not exist."""


class Conflict(QuotaError):
    """A duplicate (contract, MSISDN, ICCID, IMSI) or a change that cannot be made."""


class LimitExceeded(QuotaError):
    """A plan or purchase limit would be passed."""


_ERRORS: dict[str, type[QuotaError]] = {"notfound": NotFound, "conflict": Conflict, "limit": LimitExceeded}


def _ipv4(address: int) -> str:
    """Dotted quad of an address the lease scripts keep as an integer."""
    if not 0 <= address <= 0xFFFFFFFF:
        raise ValueError(f"{address} is not an IPv4 address")
    return f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"


def _ipv4_int(address: str) -> int:
    """The integer of a dotted quad the codec made (aaa.values.ipv4_text)."""
    a, b, c, d = address.split(".")
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


def _no_line(ref: LineRef) -> NotFound:
    return NotFound(f"no line {ref.msisdn} in contract {ref.contract_id}", field="msisdn", rule="R-2")


def precheck(report: AccountingReport, max_age: float) -> ReportOutcome | None:
    """The checks of a report that need no Redis, made before anything is sent: counters Lua
    cannot hold exactly, and a report older than session records are kept (``max_age``: it could
    be a resend of a session whose record is gone, and be counted twice). None: go on."""
    if not (0 <= report.octets <= MAX_COUNTER and 0 <= report.exempt_octets <= MAX_COUNTER):
        return ReportOutcome.IMPLAUSIBLE
    if report.at < report.now - max_age:
        return ReportOutcome.TOO_OLD
    return None


class QuotaStore:
    """Contracts, lines, pools, sessions and address leases, in Redis."""

    def __init__(self, client: Any, settings: QuotaSettings, catalog: PlanCatalog, fast: Any = None) -> None:
        """``fast``: an optional pipelining client (quota.fastredis.FastRedis) for the hot path's
        scripts and index lookups on a single Redis; everything else goes through ``client``."""
        self.client = client
        self.fast = fast
        self._month: tuple[float, float, Encoded] = (0.0, -1.0, Encoded())
        self._days: tuple[float, float, list[str]] = (0.0, -1.0, [])
        # index key → (expiry, contract_id, msisdn), "" for an unknown card: only str and float,
        # which the cyclic garbage collector stops tracking, so the cache's size (up to
        # index_cache_entries) never lengthens a collection's pause.
        self._index_cache: dict[str, tuple[float, str, str]] = {}
        self.settings = settings
        self.catalog = catalog
        net = ipaddress.ip_network(settings.ip_range)
        if net.version != 4 or net.num_addresses < 4:
            raise ValueError(f"ip_range {settings.ip_range!r} must be an IPv4 network of 4 or more addresses")
        self._ip_first = int(net.network_address) + 1  # skip the network address
        self._ip_count = net.num_addresses - 2  # ... and the broadcast address
        self._ip_keys = k.IpPoolKeys(str(net)).all()
        # Runs of arguments that never change, encoded once for the hot path's script calls.
        self._ip_pool = Encoded(*self._ip_keys)
        self._ip_span = Encoded(self._ip_first, self._ip_count)
        self._attach_limits = Encoded(settings.slice_bytes, settings.session_ttl_seconds)
        self._account_limits = Encoded(settings.slice_bytes, settings.session_ttl_seconds,
                                       settings.stopped_ttl_seconds, settings.usage_ttl_days * 86400,
                                       settings.max_report_rate_bps // 8, settings.max_report_slack_bytes,
                                       settings.stopped_ttl_seconds)
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        # (contract, msisdn, slot) → the slot's latest session, as this process last saw it
        # (attach.lua corrects a stale one); bounded like the index cache.
        self._slots: dict[tuple[str, str, str], str] = {}
        # Leases this process renewed lately (quota.renewals).
        self.renewals = RenewalMemo(settings.lease_seconds, settings.lease_memo_entries)
        # Session generations (attach.lua): unique across processes and hosts sharing the Redis.
        self._generation_prefix = secrets.token_hex(4)
        self._generations = itertools.count(1)
        self._notes_epoch = -1  # the fast client's connection epoch the notes were taken under
        self._scripts = {name: client.register_script(lua.SCRIPTS[name].source()) for name in SCRIPTS}

    # -- lifecycle ------------------------------------------------------------------------------

    async def load_scripts(self) -> None:
        """Load every script into Redis (all primaries on a cluster); EVALSHA reloads if flushed."""
        for script in self._scripts.values():
            await (self.fast or self.client).script_load(script.script)

    async def scripts_loaded(self) -> bool:
        """True if Redis holds every script; if not, loads them (Redis restarted without them)."""
        shas = [script.sha for script in self._scripts.values()]
        try:
            if all(await self.client.script_exists(*shas)):
                return True
            await self.load_scripts()
            return all(await self.client.script_exists(*shas))
        except (RedisError, OSError):
            return False

    async def ping(self) -> bool:
        """True if Redis answers."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()

    # -- helpers --------------------------------------------------------------------------------

    def _calendar(self, now: float) -> Encoded:
        """ARGV month .. prev_bundle_exp of every contract script (quota.lua CALENDAR): the month,
        the previous month, their bundle expiries; computed (and encoded) once per Japan month and
        reused until the month turns."""
        start, end, parts = self._month
        if not start <= now < end:
            parts = Encoded(*self._month_parts(now))
            day = cal.local(now, self.settings.timezone)
            nyear, nmonth = cal.add_months(day.year, day.month, 1)
            tz = self.settings.timezone
            self._month = (cal.month_start_instant(day.year, day.month, tz),
                           cal.month_start_instant(nyear, nmonth, tz), parts)
        return parts

    def _window_days(self, now: float) -> list[str]:
        """The 3-day window's day keys (R-22), computed once per Japan day."""
        start, end, days = self._days
        if not start <= now < end:
            days = cal.window_day_keys(now, self.settings.timezone)
            day = cal.local(now, self.settings.timezone).replace(hour=0, minute=0, second=0, microsecond=0)
            self._days = (day.timestamp(), (day + dt.timedelta(days=1)).timestamp(), days)
        return days

    def _month_parts(self, now: float) -> list[str]:
        tz = self.settings.timezone
        day = cal.local(now, tz)
        year, month = day.year, day.month
        pyear, pmonth = cal.add_months(year, month, -1)
        return [
            cal.month_key_of(year, month), cal.month_key_of(pyear, pmonth),
            repr(cal.bundle_expiry(year, month, tz)), repr(cal.bundle_expiry(pyear, pmonth, tz)),
        ]

    def _day_keys(self, ref: LineRef, now: float) -> list[str]:
        ck = k.ContractKeys(ref.contract_id)
        return [ck.usage(ref.msisdn, day) for day in self._window_days(now)]

    async def _run(self, name: str, keys: Keys, args: list[Any]) -> Any:
        if self.fast is not None:
            try:
                return await self._send(name, keys, args)
            except NoScriptError:  # Redis restarted or flushed its script cache
                await self.load_scripts()
                return await self._send(name, keys, args)
        async with self._in_flight:
            return await self._scripts[name](keys=plain(keys), args=plain(args))

    def _send(self, name: str, keys: Keys, args: list[Any]) -> Any:
        """Fast path: send a script call now, return its future (pipelines with other sends).

        The arguments may hold Encoded runs of values, and the keys be one (encoded once, reused)."""
        if isinstance(keys, Encoded):
            return self.fast.evalsha(self._scripts[name].sha, keys.count, keys, *args)
        return self.fast.evalsha(self._scripts[name].sha, len(keys), *keys, *args)

    @staticmethod
    def _check(res: list[Any], rule: str | None, message: str) -> list[Any]:
        """Raise the QuotaError a script reported as {'ERR', kind, field, ...}."""
        refused = lua.refusal(res)
        if refused is not None:
            raise _ERRORS[refused.kind](f"{message}: {refused.kind} ({refused.field})", field=refused.field,
                                        rule=rule)
        return res

    # -- provisioning ---------------------------------------------------------------------------

    async def create_contract(self, contract_id: str, plan: str, start_date: dt.date, now: float) -> None:
        """Create a contract on a plan; R-10: its start month's bundle is pro-rated."""
        k.check_id(contract_id, "contract_id")
        try:
            p = self.catalog.get(plan)
        except KeyError:
            raise NotFound(f"unknown plan {plan!r}", field="plan", rule="§3") from None
        ck = k.ContractKeys(contract_id)
        args = lua.create_contract_argv(
            repr(float(now)), self._calendar(now), p.name, cal.date_key(start_date),
            cal.month_key_of(start_date.year, start_date.month),
            cal.prorated_bundle(p.bundle_bytes, start_date), p.bundle_bytes, p.max_lines)
        res = await self._run("create_contract", ck.pool_keys(), args)
        self._check(res, None, f"contract {contract_id} exists")

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
        claimed = await self._claim(claims, pending)
        try:
            await self._write_line(contract_id, msisdn, iccid, imsi, card_type, voice, now)
        except BaseException:
            await self._settle(claimed, pending, "")
            raise
        await self._settle(claimed, pending, k.index_value(contract_id, msisdn))
        self.forget_index(*(key for key, _ in claims))
        return LineRef(contract_id, msisdn)

    async def _claim(self, claims: list[tuple[str, str]], pending: str) -> list[str]:
        """Claim index keys (pending, expiring); on a taken one release the others and refuse."""
        ttl_ms = self.settings.claim_ttl_seconds * 1000
        claimed: list[str] = []
        try:
            for key, field in claims:
                if not await self.client.set(key, pending, nx=True, px=ttl_ms):
                    raise Conflict(f"{field} is already in use", field=field, rule="R-2")
                claimed.append(key)
        except BaseException:
            await self._settle(claimed, pending, "")
            raise
        return claimed

    async def _settle(self, keys: list[str], pending: str, final: str) -> None:
        """Commit claimed index keys to final (no expiry), or release them when final is empty."""
        for key in keys:
            await self._run("index_cas", [key], lua.cas_argv(pending, final))

    async def add_card(
        self, ref: LineRef, iccid: str, imsi: str, card_type: str, reason: str, now: float | None = None
    ) -> LineFacts:
        """R-32/R-33: register the line's next card, pending until activate_card.

        Its ICCID and IMSI are claimed in the index at once (a duplicate is refused, naming the
        field), so they resolve to the line; the attach script still refuses the new IMSI as
        card-pending until activation. A lost or broken card's line is suspended meanwhile
        (R-33); for a type change the old card works until then (R-32). One pending card a line.
        """
        k.check_id(iccid, "iccid")
        k.check_id(imsi, "imsi")
        if reason not in CARD_REASONS:
            raise QuotaError(f"reason must be one of {CARD_REASONS}", field="reason", rule="R-32")
        now = time.time() if now is None else now
        pending = k.index_value(ref.contract_id, ref.msisdn, secrets.token_hex(8))
        claims = [(k.iccid_index(iccid), "iccid"), (k.imsi_index(imsi), "imsi")]
        claimed = await self._claim(claims, pending)
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self._day_keys(ref, now)]
        args = lua.add_card_argv(repr(float(now)), self._calendar(now), iccid, imsi, card_type, reason,
                                 int(reason != "type-change"))
        try:
            res = await self._run("add_card", keys, args)
            refused = lua.refusal(res)
            if refused is not None and refused.kind == "conflict" and refused.field == "iccid":
                raise Conflict(f"line {ref.msisdn} already has a pending card {refused.detail}; activate it first",
                               field="iccid", rule="R-32")
            self._check(res, "R-32", f"no new card for {ref.msisdn}")
        except BaseException:
            await self._settle(claimed, pending, "")
            raise
        await self._settle(claimed, pending, k.index_value(ref.contract_id, ref.msisdn))
        self.forget_index(*(key for key, _ in claims))
        return lua.facts(res[1])

    async def activate_card(self, ref: LineRef, iccid: str, now: float | None = None) -> CardActivation:
        """R-32/R-33: the pending card becomes the line's card; the old one is refused from now on.

        Held data, usage history, switch and sessions stay with the line (the caller drops the
        old card's sessions). The old ICCID/IMSI stay in the index, retired: they still name the
        line, whose attach script refuses the old IMSI (card-replaced), in every process at once
        whatever its cache holds; and they cannot be claimed by another line. Activating the
        line's current card again changes nothing (``old`` is None).
        """
        k.check_id(iccid, "iccid")
        now = time.time() if now is None else now
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self._day_keys(ref, now)]
        args = lua.activate_card_argv(repr(float(now)), self._calendar(now), iccid)
        res = self._check(await self._run("activate_card", keys, args), "R-32",
                          f"card {iccid} of {ref.msisdn} not activated")
        card, old, reason, facts = lua.activate_card_reply(res)
        if old is None:
            return CardActivation(card=card, old=None, reason="", facts=facts)
        final = k.index_value(ref.contract_id, ref.msisdn)
        for key in (k.iccid_index(card.iccid), k.imsi_index(card.imsi)):
            # Normally committed by add_card; restored here if add_card died before committing.
            await self.client.set(key, final, nx=True)
        gone = [k.iccid_index(old.iccid), k.imsi_index(old.imsi)]
        # Retired, not deleted: the old card stays tied to its line (an attach with it is refused
        # as card-replaced) and its ICCID/IMSI can never be given to another line.
        await self._settle(gone, final, k.index_value(ref.contract_id, ref.msisdn, k.RETIRED))
        self.forget_index(*gone, k.iccid_index(card.iccid), k.imsi_index(card.imsi))
        return CardActivation(card=card, old=old, reason=reason, facts=facts)

    async def replace_card(self, ref: LineRef, iccid: str, imsi: str, card_type: str = "nano") -> CardActivation:
        """R-32: a new card replaces the line's card at once (add_card, then activate_card)."""
        await self.add_card(ref, iccid, imsi, card_type, "type-change")
        return await self.activate_card(ref, iccid)

    async def card(self, ref: LineRef) -> Card:
        """The line's current card."""
        iccid, imsi, card_type = await self.client.hmget(
            k.ContractKeys(ref.contract_id).line(ref.msisdn), ["iccid", "imsi", "card_type"])
        if iccid is None:
            raise _no_line(ref)
        return Card(lua.text(iccid), lua.text(imsi), lua.text(card_type))

    async def _write_line(
        self, contract_id: str, msisdn: str, iccid: str, imsi: str, card_type: str, voice: bool, now: float
    ) -> None:
        ck = k.ContractKeys(contract_id)
        keys = [*ck.pool_keys(), ck.lines, ck.line(msisdn)]
        args = lua.add_line_argv(repr(float(now)), self._calendar(now), msisdn, iccid, imsi, card_type, int(voice))
        res = await self._run("add_line", keys, args)
        self._check(res, "§3", f"line {msisdn} not added to {contract_id}")

    async def find_line(self, imsi: str | None, msisdn: str | None) -> LineRef | None:
        """R-2: the line of a card's IMSI when given, else of the MSISDN; None if unknown. A
        replaced card's IMSI still gives its line: the attach script refuses it (card-replaced).

        Answers (unknown ones too) are remembered for ``index_cache_seconds``."""
        if imsi:
            key = k.imsi_index(imsi)
        elif msisdn:
            key = k.msisdn_index(msisdn)
        else:
            return None
        now = time.monotonic()
        cached = self._index_cache.get(key)
        if cached is not None and cached[0] > now:
            return LineRef(cached[1], cached[2]) if cached[1] else None
        ref = await self._lookup(key)
        if self.settings.index_cache_seconds > 0:
            if len(self._index_cache) >= self.settings.index_cache_entries:
                self._index_cache.clear()
            expiry = now + self.settings.index_cache_seconds
            self._index_cache[key] = (expiry, ref.contract_id, ref.msisdn) if ref else (expiry, "", "")
        return ref

    def forget_index(self, *keys: str) -> None:
        """Drop cached lookups (this process changed the index)."""
        for key in keys:
            self._index_cache.pop(key, None)

    async def _lookup(self, key: str) -> LineRef | None:
        if self.fast is not None:
            raw = await self.fast.get(key)
        else:
            async with self._in_flight:
                raw = await self.client.get(key)
        found = k.parse_card_index(lua.text(raw)) if raw is not None else None
        return LineRef(*found) if found else None

    async def charge(self, contract_id: str, units: int, who: str, now: float) -> Bucket:
        """R-11: buy units of 100 MB; at most 30 a calendar month, a purchase passing it refused whole."""
        if not isinstance(units, int) or units < 1:
            raise QuotaError("units must be a whole number of 1 or more", field="units", rule="R-11")
        s = self.settings
        ck = k.ContractKeys(contract_id)
        expiry = cal.coupon_expiry(now, s.timezone)
        entry = json.dumps({"at": now, "units": units, "who": who}, separators=(",", ":"))
        cutoff = now - s.charge_history_days * 86400
        args = lua.charge_argv(repr(float(now)), self._calendar(now), units, s.max_units_per_month,
                               s.coupon_unit_bytes, repr(expiry), entry, repr(cutoff))
        res = self._check(await self._run("charge", [*ck.pool_keys(), ck.charges], args), "R-11",
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
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self._day_keys(ref, now)]
        res = await self._run("set_line", keys, lua.set_line_argv(repr(float(now)), self._calendar(now), field, value))
        refused = lua.refusal(res)
        if refused is not None and refused.detail == "card-pending":
            raise Conflict(f"line {ref.msisdn} waits for its replacement card: activate the new card to resume it",
                           field="status", rule="R-33")
        self._check(res, rule, f"cannot set {field} of {ref.msisdn}")
        return lua.facts(res[1])

    # -- sessions -------------------------------------------------------------------------------

    def _session_keys(self, ref: LineRef, session_id: str, now: float) -> list[str]:
        return k.ContractKeys(ref.contract_id).session_keys(ref.msisdn, session_id, self._window_days(now))

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
        keys = self._session_keys(req.ref, sid, req.now)
        if req.slot:
            keys.append(k.ContractKeys(req.ref.contract_id).session(req.ref.msisdn, req.session_id))
        owner = k.session_owner(req.ref.contract_id, req.ref.msisdn, sid)
        noted, epoch = self._noted_lease(owner, req.now)
        args = lua.attach_argv(
            repr(float(req.now)), self._calendar(req.now), req.imsi or "", sid, req.nas_ip, self._attach_limits,
            int(req.check_identity), f"{self._generation_prefix}.{next(self._generations)}",
            noted[1] if noted else "", self._window_days(req.now)[0], req.gateway, req.acct_session_id, req.slot,
            req.session_id)
        if noted is None and not req.slot:
            res, ip = await self._pair(("attach", keys, args), self._alloc_call(owner, req.now), sequential=True)
            reply = lua.attach_reply(res)
        else:  # a slot's session is known once the script has run: its lease is taken after
            res, _ = await self._pair(("attach", keys, args), None)
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
                self.renewals.forget(owner)
                await self._run("ip_release", self._ip_pool, lua.ip_release_argv(owner))
            return AttachResult(ok=False, reason=reply.status, facts=None, granted=0, framed_ip=None)
        granted, facts = reply.granted, reply.facts
        if ip is None and (noted is not None or req.slot):  # not the noted session: lease as usual
            ip = await self._run(*self._alloc_call(owner, req.now))
            noted = None
        if ip is None:
            # No address, no session: forget it again (the slice drawn stays the line's own, R-13).
            self.renewals.forget(owner)
            await self._end(req.ref, sid, req.now)
            return AttachResult(ok=False, reason="no-address", facts=facts, granted=granted, framed_ip=None)
        if reply.new and req.gateway:
            await self._command("SADD", k.gateway_sessions(req.gateway), owner)
        if noted is None:
            ip = lua.text(ip)
            if self.fast is not None and self.fast.epoch == epoch:
                self.renewals.renewed(owner, req.now, ip, reply.generation)
            else:
                self.renewals.renewed(owner, req.now)
        return AttachResult(ok=True, reason=None, facts=facts, granted=granted, framed_ip=_ipv4(int(ip)),
                            session_id=sid)

    def _noted_lease(self, owner: str, now: float) -> tuple[tuple[str, str] | None, int | None]:
        """The (address, generation) this process noted for the owner, and the connection epoch
        a new note would be taken under; no notes without the pipelining client (quota.renewals)."""
        if self.fast is None:
            return None, None
        epoch = self.fast.epoch
        if epoch != self._notes_epoch:
            self.renewals.clear()
            self._notes_epoch = epoch
            return None, epoch
        return self.renewals.lease(owner, now), epoch

    def _alloc_call(self, owner: str, now: float) -> Call:
        return ("ip_alloc", self._ip_pool,
                lua.ip_alloc_argv(owner, repr(now), repr(now + self.settings.lease_seconds), self._ip_span))

    Call = tuple[str, Keys, list[Any]]

    async def _pair(self, first: Call, second: Call | None, sequential: bool = False) -> tuple[Any, Any]:
        """Two script calls: pipelined on the fast path; else one after the other (``sequential``:
        the second only if the first said ok) or concurrently."""
        if self.fast is None:
            res = await self._run(*first)
            if second is None or (sequential and lua.text(res[0]) != "ok"):
                return res, None
            return res, await self._run(*second)
        futures = [self._send(*first)] + ([self._send(*second)] if second else [])
        try:  # the usual case: both answered
            return await futures[0], (await futures[1] if second else None)
        except RedisError:
            pass
        results: list[Any] = []
        for future in futures:  # a failure: collect both (a done future awaited again gives the same)
            try:
                results.append(await future)
            except RedisError as exc:
                results.append(exc)
        if any(isinstance(r, NoScriptError) for r in results):
            await self.load_scripts()
            return await self._pair(first, second, sequential)
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results[0], results[1] if second else None

    def _account_args(self, report: AccountingReport) -> list[Any]:
        return lua.account_argv(
            repr(float(report.now)), self._calendar(report.now), report.session_id, report.status, report.octets,
            report.exempt_octets, report.nas_ip, self._account_limits, report.framed_ip or "",
            report.acct_session_id, repr(float(report.at)), "" if report.session_time is None else report.session_time,
            report.gateway)

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
        keys = self._session_keys(report.ref, report.session_id, report.now)
        keys.append(keys[6] if report.event_time is None or self._days[0] <= report.at < self._days[1]
                    else k.ContractKeys(report.ref.contract_id).usage(
                        report.ref.msisdn, cal.day_key(report.at, self.settings.timezone)))
        lease = self._lease_call(report)
        # The gateway's set of sessions is joined at a Start and left at a Stop, in the same
        # round trip (both are idempotent; a session first named by an Interim joins after).
        owner = k.session_owner(report.ref.contract_id, report.ref.msisdn, report.session_id)
        member = None
        if report.gateway and report.status in (ACCT_START, ACCT_STOP):
            member = ("SADD" if report.status == ACCT_START else "SREM", k.gateway_sessions(report.gateway), owner)
        noted = self.fast.call(*member) if member and self.fast is not None else None
        res, renewed = await self._pair(("account", keys, self._account_args(report)), lease)
        if noted is not None:
            await noted
        elif member is not None:
            await self._command(*member)
        if lease is not None and lease[0] == "ip_renew":
            # Renewed, or no lease to renew: a lease made later by an attach starts at full length.
            if renewed is None:
                self.renewals.forget(lease[2][0])
            self.renewals.renewed(lease[2][0], report.now)
        result = lua.account_reply(res)
        if result is None:
            raise _no_line(report.ref)
        if result.outcome is ReportOutcome.COUNTED:
            await self._after_count(report, fresh=result.fresh, leased=lease is None or renewed is not None)
        return result

    async def _after_count(self, report: AccountingReport, fresh: bool, leased: bool) -> None:
        """What a counted report does on other slots once counted: a Stop releases the session's
        address; a session's first report, if it is no Start, joins its gateway's set, and takes
        over an attach's address lease when the attach named the session otherwise (ip_adopt.lua)."""
        owner = k.session_owner(report.ref.contract_id, report.ref.msisdn, report.session_id)
        if report.status == ACCT_STOP:
            self.renewals.forget(owner)
            await self._run("ip_release", self._ip_pool, lua.ip_release_argv(owner))
            return
        if not fresh:
            return
        if report.gateway and report.status != ACCT_START:
            await self._command("SADD", k.gateway_sessions(report.gateway), owner)
        address = _ipv4_int(report.framed_ip) if report.framed_ip else 0
        if leased or not self._ip_first <= address < self._ip_first + self._ip_count:
            return
        line = k.session_owner(report.ref.contract_id, report.ref.msisdn, "")
        old = lua.optional_text(await self._run("ip_adopt", self._ip_pool, lua.ip_adopt_argv(
            owner, repr(report.now + self.settings.lease_seconds), address, line)))
        if old:
            old_sid = old[len(line):]
            self.renewals.forget(old)
            self.renewals.renewed(owner, report.now)
            ck = k.ContractKeys(report.ref.contract_id)
            keys = [ck.live(report.ref.msisdn), ck.session(report.ref.msisdn, old_sid)]
            gw = lua.optional_text(await self._run("drop_placeholder", keys, lua.drop_placeholder_argv(old_sid)))
            if gw:
                await self._command("SREM", k.gateway_sessions(gw), old)

    async def _command(self, *args: Any) -> Any:
        """One plain command: on the pipelining client when there is one."""
        if self.fast is not None:
            return await self.fast.call(*args)
        async with self._in_flight:
            return await self.client.execute_command(*args)

    async def _end(self, ref: LineRef, session_id: str, now: float) -> str | None:
        """End a live session counting nothing more; its gateway, or None if it was not live."""
        ck = k.ContractKeys(ref.contract_id)
        return lua.optional_text(await self._run(
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
        self.renewals.forget(owner)
        await self._run("ip_release", self._ip_pool, lua.ip_release_argv(owner))
        if gw:
            await self._command("SREM", k.gateway_sessions(gw), owner)
        return gw is not None

    async def end_gateway_sessions(self, gateway: str, now: float, batch: int = 100) -> int:
        """Accounting-On/Off: the gateway restarted, so every session it ran has ended. Each ends
        as end_session says; the gateway's set is emptied as they go. Returns how many were live
        (0 when said again)."""
        key = k.gateway_sessions(gateway)
        ended = 0
        while True:
            owners = [lua.text(o) for o in await self._command("SPOP", key, batch) or []]
            if not owners:
                return ended
            for owner in owners:
                contract_id, msisdn, session_id = owner.split("\t", 2)
                ref = LineRef(contract_id, msisdn)
                if await self._end(ref, session_id, now) is not None:
                    ended += 1
                self.renewals.forget(owner)
                await self._run("ip_release", self._ip_pool, lua.ip_release_argv(owner))

    def _lease_call(self, report: AccountingReport) -> Call | None:
        """The lease script a report needs beside the count: renew on Start/Interim unless this
        process renewed the lease within a quarter of its length (quota.renewals). A Stop releases
        the lease once it is counted (_after_count): a late Stop of an earlier session under the
        same id must not take the address of the live one."""
        owner = k.session_owner(report.ref.contract_id, report.ref.msisdn, report.session_id)
        if report.status in (ACCT_START, ACCT_INTERIM) and self.renewals.due(owner, report.now):
            return ("ip_renew", self._ip_pool, lua.ip_renew_argv(owner, repr(report.now + self.settings.lease_seconds)))
        return None

    async def set_speed(self, ref: LineRef, expected: str, new: str) -> bool:
        """Compare-and-set of the line's speed class: True only for the caller that changed it."""
        if new not in SPEED_VALUES or expected not in SPEED_VALUES:
            raise QuotaError(f"speed must be one of {SPEED_VALUES}", field="speed", rule="R-24")
        ck = k.ContractKeys(ref.contract_id)
        res = int(await self._run("set_speed", [ck.line(ref.msisdn)], lua.cas_argv(expected, new)))
        if res < 0:
            raise _no_line(ref)
        return res == 1

    async def line_facts(self, ref: LineRef, now: float) -> LineFacts:
        """A line's facts now (after lazy maintenance of its contract)."""
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self._day_keys(ref, now)]
        args = lua.clock_argv(repr(float(now)), self._calendar(now))
        facts = lua.facts_reply(await self._run("line_facts", keys, args))
        if facts is None:
            raise _no_line(ref)
        return facts

    async def top_up(self, ref: LineRef, now: float) -> tuple[int, LineFacts]:
        """R-12 / R-24: a line back at high speed that holds less than a slice draws one now, as an
        attach would, so the CoA moving its sessions to high speed carries data to use (top_up.lua;
        nothing is drawn unless the line's speed class is `high`). Returns (octets drawn, facts)."""
        ck = k.ContractKeys(ref.contract_id)
        keys = [*ck.pool_keys(), ck.line(ref.msisdn), *self._day_keys(ref, now)]
        args = lua.top_up_argv(repr(float(now)), self._calendar(now), self.settings.slice_bytes)
        topped = lua.top_up_reply(await self._run("top_up", keys, args))
        if topped is None:
            raise _no_line(ref)
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
            await self._run("prune_live", keys, lua.prune_live_argv(gone))
        return sessions

    async def _session(self, ref: LineRef, sid: str, rec: dict[str, str]) -> Session:
        ip = rec.get("ip") or None
        if ip is None:
            owner = k.session_owner(ref.contract_id, ref.msisdn, sid)
            leased = await self.client.hget(self._ip_keys[2], owner)
            ip = str(ipaddress.IPv4Address(int(lua.text(leased)))) if leased is not None else None
        return Session(session_id=sid, nas_ip=rec.get("nas", ""), framed_ip=ip, imsi=rec.get("imsi") or None,
                       started=float(rec.get("started") or 0), acct_session_id=rec.get("asid") or sid)

    # -- queries --------------------------------------------------------------------------------

    async def contract_view(self, contract_id: str, now: float) -> ContractView:
        """R-35: the pool by bucket and each line's held data, switch, status and live sessions."""
        ck = k.ContractKeys(contract_id)
        args = lua.clock_argv(repr(float(now)), self._calendar(now))
        pool = lua.view_reply(await self._run("view", ck.pool_keys(), args))
        if pool is None:
            raise NotFound(f"no contract {contract_id}", field="contract_id", rule="R-35")
        msisdns = sorted(lua.text(m) for m in await self.client.smembers(ck.lines))
        lines = await asyncio.gather(*(self._line_view(ck, m) for m in msisdns))
        return ContractView(contract_id=contract_id, plan=pool.plan, start_date=pool.start_date,
                            pool=sum(b.left for b in pool.buckets), buckets=pool.buckets, lines=list(lines))

    async def _line_view(self, ck: k.ContractKeys, msisdn: str) -> LineView:
        raw = await self.client.hgetall(ck.line(msisdn))
        f = {lua.text(a): lua.text(b) for a, b in raw.items()}
        live = await self.client.scard(ck.live(msisdn))
        return LineView(msisdn=msisdn, iccid=f.get("iccid", ""), imsi=f.get("imsi", ""),
                        card_type=f.get("card_type", ""), voice=f.get("voice") == "1",
                        status=f.get("status", ""), coupon_on=f.get("coupon") == "1",
                        held=int(f.get("held") or 0), speed=f.get("speed", ""),
                        overrun=int(f.get("overrun") or 0), sessions=int(live))

    async def line_usage(self, ref: LineRef, day_keys: list[str]) -> list[DayUsage]:
        """R-35: the line's usage on each given Japan day ("YYYYMMDD"), high and low speed apart."""
        ck = k.ContractKeys(ref.contract_id)
        rows = await asyncio.gather(
            *(self.client.hmget(ck.usage(ref.msisdn, day), ["high", "low"]) for day in day_keys)
        )
        return [DayUsage(day=d, high=int(lua.text(hi) or 0), low=int(lua.text(lo) or 0))
                for d, (hi, lo) in zip(day_keys, rows, strict=True)]

    async def charges(self, contract_id: str, since: float) -> list[Charge]:
        """R-35: the charge history from since, oldest first (bundles are not charges)."""
        ck = k.ContractKeys(contract_id)
        out = []
        for raw in await self.client.zrangebyscore(ck.charges, since, "+inf"):
            bucket_id, _, body = lua.text(raw).partition("|")
            entry = json.loads(body)
            out.append(Charge(at=float(entry["at"]), units=int(entry["units"]), who=str(entry["who"]),
                              bucket_id=bucket_id))
        return out
