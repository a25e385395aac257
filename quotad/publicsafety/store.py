"""PublicSafetyStore: the public-safety contract trees in Redis (R-60 … R-65).

Keys, all of parent contract P's in its slot (hash tag ``{c:P}``, as every contract's):

    q:{c:P}:ps              hash   v (version), doc (the tree as JSON, publicsafety.codec)
    q:{c:P}:l:M             hash   line M's RADIUS record: ps=1, group, iccid, imsi, starts, ends
                                   (YYYYMMDD, '' = open), ipv4, ipv6, voice, status, speed
    q:{c:P}:psu:<YYYYMM>    hash   usage in that Japan month: g:<group>, l:<msisdn> (bytes)
    q:{c:P}:live:M, q:{c:P}:s:M:<sid>, q:{c:P}:u:M:<YYYYMMDD>   sessions and day usage, as for
                                   consumer lines (quota.keys), so CoA targets are found alike

Lines are found by the shared index keys (q:imsi:, q:msisdn:, q:iccid:), so numbers and cards
are unique across both services; fixed addresses have their own index keys, q:psip4:<address>
and q:psip6:<prefix>, so no two lines share one (R-62).

A change reads the tree, applies a pure function (publicsafety.changes) and writes the new tree
and every line record with one script that first checks the version it read (ps_commit.lua):
a refused change writes nothing, and a concurrent one is retried on the fresh tree. Index keys
live in other slots, so they are claimed first (pending, expiring) and committed or released
after, as quota.provisioning does (quota.lineindex).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quotad.publicsafety import codec
from quotad.publicsafety.model import Line, Parent
from quotad.quota import calendar as cal
from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.errors import Conflict, NotFound
from quotad.quota.model import ACCT_STOP, AccountingReport, QuotaSettings, ReportOutcome, precheck

SCRIPTS = ("ps_commit", "ps_attach", "ps_account", "index_cas")
RETRIES = 8
CLAIM_TTL_MS = 60_000


def tree_key(contract_id: str) -> str:
    return f"{k.PREFIX}:{k.tag(contract_id)}:ps"


def month_usage_key(contract_id: str, month_key: str) -> str:
    return f"{k.PREFIX}:{k.tag(contract_id)}:psu:{month_key}"


def ipv4_index(address: str) -> str:
    return f"{k.PREFIX}:psip4:{address}"


def ipv6_index(prefix: str) -> str:
    return f"{k.PREFIX}:psip6:{prefix}"


def _daykey(day: dt.date | None) -> str:
    return cal.date_key(day) if day else ""


def line_record(line: Line, voice: bool) -> dict[str, str]:
    """The fields of a line's RADIUS record (what ps_attach.lua and ps_account.lua read)."""
    return {"ps": "1", "group": line.group_id, "iccid": line.iccid, "imsi": line.imsi, "card_type": line.sim_type,
            "starts": _daykey(line.started), "ends": _daykey(line.ends), "ipv4": line.ipv4,
            "ipv6": line.ipv6_prefix, "voice": "1" if voice else "0", "status": "active"}


@dataclass(slots=True, frozen=True)
class PsAttach:
    """The outcome of a public-safety attach: ok with the fixed addresses, or a reject reason."""

    reason: str | None
    ipv4: str = ""
    ipv6_prefix: str = ""
    window_bytes: int = 0
    speed: str = ""


def attach_reply(res: list[Any]) -> PsAttach:
    """ps_attach.lua's reply."""
    if lua.text(res[0]) != "ok":
        return PsAttach(reason=lua.text(res[0]))
    return PsAttach(reason=None, ipv4=lua.text(res[1]), ipv6_prefix=lua.text(res[2]),
                    window_bytes=int(lua.text(res[3])), speed=lua.text(res[4]))


@dataclass(slots=True, frozen=True)
class PsAccount:
    """What one accounting report added, the line's heavy-use window total, and its last speed."""

    added: int
    window_bytes: int
    speed: str
    outcome: ReportOutcome = ReportOutcome.COUNTED
    fresh: bool = False  # a new session began under its id with this report


def account_reply(res: list[Any]) -> PsAccount | None:
    """ps_account.lua's reply; None: not a public-safety line."""
    if lua.text(res[0]) == "unknown":
        return None
    return PsAccount(added=int(lua.text(res[1])), window_bytes=int(lua.text(res[2])), speed=lua.text(res[3]),
                     outcome=ReportOutcome(lua.text(res[0])), fresh=int(res[4]) == 1)


def commit_reply(res: list[Any]) -> str:
    """ps_commit.lua's reply: 'OK', 'RETRY' (the tree changed since it was read) or 'ERR' (taken)."""
    return lua.text(res[0])


class PublicSafetyStore:
    """Public-safety contract trees, their lines' RADIUS records and usage, in Redis."""

    def __init__(self, client: Any, timezone: str = "Asia/Tokyo") -> None:
        self.client = client
        self.tz = timezone
        self._scripts = {name: client.register_script(lua.SCRIPTS[name].source()) for name in SCRIPTS}

    def today(self, now: float) -> dt.date:
        """The Japan date of an instant (every rule of §6 is in Japan days)."""
        return cal.local(now, self.tz).date()

    # -- reading ----------------------------------------------------------------------------------

    async def _read(self, contract_id: str) -> tuple[str, Parent]:
        version, doc = await self.client.hmget(tree_key(contract_id), ["v", "doc"])
        if doc is None:
            raise NotFound(f"no public-safety contract {contract_id}", field="contract_id", rule="R-60")
        return lua.text(version), codec.loads(doc)

    async def load(self, contract_id: str) -> Parent:
        """The contract's tree; NotFound if there is none."""
        return (await self._read(contract_id))[1]

    async def month_usage(self, contract_id: str, month: str) -> dict[str, int]:
        """Bytes used in month "YYYY-MM" per group id (R-63, R-65)."""
        raw = await self.client.hgetall(month_usage_key(contract_id, month.replace("-", "")))
        out = {}
        for name, value in raw.items():
            field = lua.text(name)
            if field.startswith("g:"):
                out[field[2:]] = int(lua.text(value))
        return out

    # -- writing ----------------------------------------------------------------------------------

    async def create(self, parent: Parent) -> None:
        """Store a new tree; Conflict if the id is taken (by either service)."""
        k.check_id(parent.id, "contract_id")
        if await self._commit("0", parent) != "OK":
            raise Conflict(f"contract {parent.id} exists", field="id", rule="R-60")

    async def change(self, contract_id: str, fn: Callable[[Parent], Parent],
                     claims: Callable[[Parent, Parent], list[tuple[str, str]]] | None = None) -> Parent:
        """Apply fn to the stored tree and write the result atomically (retried if the tree changed
        meanwhile). claims(old, new) names index keys (key, field) the change takes; they are
        claimed first and committed with it, or released; the ones the old tree held and the new
        does not are released after."""
        for _ in range(RETRIES):
            version, old = await self._read(contract_id)
            new = fn(old)
            wanted = claims(old, new) if claims else []
            pending = k.index_value(contract_id, "", secrets.token_hex(8))
            claimed = await self._claim(wanted, pending)
            try:
                committed = await self._commit(version, new)
            except BaseException:
                await self._swap_claims([key for key, _ in claimed], pending, "")
                raise
            if committed == "OK":
                await self._finish(contract_id, claimed, pending, old, new)
                return new
            await self._swap_claims([key for key, _ in claimed], pending, "")
        raise Conflict(f"contract {contract_id} is being changed by others; retry", field="contract_id", rule="R-60")

    async def _commit(self, version: str, parent: Parent) -> str:
        ck = k.ContractKeys(parent.id)
        voice = {g.id: g.kind == "voice" for g in parent.groups}
        keys = [tree_key(parent.id), ck.contract, *(ck.line(ln.msisdn) for ln in parent.lines)]
        records = [json.dumps(line_record(ln, voice.get(ln.group_id, False))) for ln in parent.lines]
        args = lua.ps_commit_argv(version or "0", codec.dumps(parent), records)
        return commit_reply(await self._scripts["ps_commit"](keys=keys, args=args))

    async def _claim(self, wanted: list[tuple[str, str]], pending: str) -> list[tuple[str, str]]:
        claimed: list[tuple[str, str]] = []
        try:
            for key, field in wanted:
                if not await self.client.set(key, pending, nx=True, px=CLAIM_TTL_MS):
                    raise Conflict(f"{field} is already in use", field=field, rule="R-62" if "ip" in field else "R-2")
                claimed.append((key, field))
        except BaseException:
            await self._swap_claims([key for key, _ in claimed], pending, "")
            raise
        return claimed

    async def _swap_claims(self, keys: list[str], expected: str, final: str) -> None:
        """Compare-and-set each index key from ``expected`` to ``final``: a claim committed to its
        line, or released when ``final`` is ""."""
        for key in keys:
            await self._scripts["index_cas"](keys=[key], args=lua.cas_argv(expected, final))

    async def _finish(self, contract_id: str, claimed: list[tuple[str, str]], pending: str, old: Parent,
                      new: Parent) -> None:
        """Commit the claims to their lines; release the index keys the new tree no longer uses."""
        owners = {key: k.index_value(contract_id, ln.msisdn) for ln in new.lines for key in index_keys(ln)}
        for key, _ in claimed:
            await self._swap_claims([key], pending, owners[key])
        for ln in old.lines:
            for key in index_keys(ln):
                if key not in owners:
                    await self._swap_claims([key], k.index_value(contract_id, ln.msisdn), "")

    # -- RADIUS -----------------------------------------------------------------------------------

    def window_keys(self, contract_id: str, msisdn: str, now: float, days: int) -> list[str]:
        """Day-usage keys of the heavy-use window (R-63): today first."""
        ck = k.ContractKeys(contract_id)
        return [ck.usage(msisdn, day) for day in cal.window_day_keys(now, self.tz, days)]

    async def attach(self, contract_id: str, msisdn: str, imsi: str | None, now: float, days: int) -> PsAttach:
        """R-3 / R-62: the line may attach today with this card; its fixed addresses and window usage."""
        ck = k.ContractKeys(contract_id)
        keys = [ck.line(msisdn), *self.window_keys(contract_id, msisdn, now, days)]
        args = lua.ps_attach_argv(cal.day_key(now, self.tz), imsi or "")
        return attach_reply(await self._scripts["ps_attach"](keys=keys, args=args))

    async def account(self, r: AccountingReport, days: int, settings: QuotaSettings) -> PsAccount | None:
        """R-63 / R-71: count a report's new usage once, in the month and on the day of its event;
        None if the line is not a public-safety line. Counted as consumer reports are
        (_counters.lua): a report that cannot be counted safely changes nothing (its outcome)."""
        contract_id, msisdn = r.ref.contract_id, r.ref.msisdn
        ck = k.ContractKeys(contract_id)
        keys = [ck.line(msisdn), ck.live(msisdn), ck.session(msisdn, r.session_id),
                month_usage_key(contract_id, cal.month_key(r.at, self.tz)),
                ck.usage(msisdn, cal.day_key(r.at, self.tz)),
                *self.window_keys(contract_id, msisdn, r.now, days)]
        refused = precheck(r, settings.stopped_ttl_seconds)
        if refused is not None:
            if lua.text(await self.client.hget(ck.line(msisdn), "ps")) != "1":
                return None
            return PsAccount(added=0, window_bytes=0, speed="", outcome=refused)
        args = lua.ps_account_argv(
            r.session_id, r.status, r.octets, r.nas_ip, r.acct_session_id, repr(r.now), settings.session_ttl_seconds,
            settings.stopped_ttl_seconds, settings.usage_ttl_days * 86400, msisdn, repr(float(r.at)),
            "" if r.session_time is None else r.session_time, settings.max_report_rate_bps // 8,
            settings.max_report_slack_bytes, settings.stopped_ttl_seconds, r.gateway)
        result = account_reply(await self._scripts["ps_account"](keys=keys, args=args))
        if result is None:
            return None
        owner = k.session_owner(contract_id, msisdn, r.session_id)
        if result.outcome is ReportOutcome.COUNTED and r.gateway and (r.status == ACCT_STOP or result.fresh):
            key = k.gateway_sessions(r.gateway)
            await (self.client.srem(key, owner) if r.status == ACCT_STOP else self.client.sadd(key, owner))
        return result


def index_keys(line: Line) -> tuple[str, ...]:
    """The index keys a line holds: number, card, fixed addresses."""
    return (k.msisdn_index(line.msisdn), k.iccid_index(line.iccid), k.imsi_index(line.imsi),
            ipv4_index(line.ipv4), ipv6_index(line.ipv6_prefix))


def new_claims(old: Parent, new: Parent) -> list[tuple[str, str]]:
    """The index keys the new tree holds and the old one did not, with the field each came from."""
    held = {key for ln in old.lines for key in index_keys(ln)}
    out = []
    for ln in new.lines:
        prefix = "d_" if ln.line_type == "D" else "k_"
        for key, field in zip(index_keys(ln), ("msisdn", "iccid", "imsi", "ipv4", "ipv6_prefix"), strict=True):
            if key not in held:
                out.append((key, prefix + field if old.line(ln.msisdn) is None else field))
    return out

