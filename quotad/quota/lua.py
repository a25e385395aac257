"""The named contract between Python and the Lua scripts (quota/scripts/*.lua).

Each script starts with a header that names what it takes and gives::

    -- attach.lua: a SIM attaches (R-3, R-12, R-50).
    -- Prepended: _lib.lua
    -- KEYS: contract, buckets, expiries, line, live, session, day0, day1, day2, spare_session?
    -- ARGV: now, month, ...
    -- Reply: {reason} | {'retry', sid} | {'ok', granted, facts, generation, same, new, sid}

(``name?``: may be absent; ``name...``: the rest, any number), and unpacks KEYS and ARGV into
locals of those names (``local contract, buckets, ... = unpack(KEYS)``). ``SCRIPTS`` below
declares the same names, the files prepended (which the runner follows: ``source``) and the one
function that builds each script's ARGV; tests/unit/test_lua_contract.py holds the three
together, so a field added on one side only fails a test. Builders only place values: the caller
converts them (numbers as ``repr``, absent values as ''). Runs of values that never change are
passed encoded once (``GROUPS``); settings that never change while a process runs are not
passed at all: a script's header names them (``-- Constants: slice, ...``), ``Script.constants``
declares them and ``source`` writes their values into the text it registers (``constants``). Each
table reply has one parser here; the public-safety scripts' are in publicsafety/store.py, beside
the dataclasses they return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

from quotad.quota.model import AccountResult, Bucket, Card, LineFacts, QuotaSettings, ReportOutcome

Arg = Any  # one ARGV value (str, int, float), or a resp.Encoded run standing for several

# The contract scripts' first KEYS and ARGV (_lib.lua reads them by number).
POOL = ("contract", "buckets", "expiries")
CALENDAR = ("month", "prev_month", "bundle_exp", "prev_bundle_exp")
CLOCK = ("now", *CALENDAR)
DAYS = ("day0", "day1", "day2")  # the 3-day window's usage keys, today first
LINE_KEYS = (*POOL, "line", *DAYS)
# The line's keys first and its session last: the store sends the line's run encoded once
# (runner.session_run), the session's key after it.
SESSION_KEYS = (*POOL, "line", "live", *DAYS, "session")
IP_POOL = ("leases", "owner_of", "address_of", "next_unused")  # keys.IpPoolKeys.all()

# Builder parameters that stand for a run of ARGV, encoded once (resp.Encoded): the hot
# path's clock runs change at most once a second (runner.ClockRun: now in whole seconds, the
# calendar, the day and fixed settings), a gateway's run once per gateway.
GROUPS = {
    "calendar": CALENDAR,
    "attach_clock": (*CLOCK, "today", "slice", "ttl"),
    "account_clock": CLOCK,
    "gateway": ("nas", "gw"),
    "span": ("first", "count"),
}


# Settings written into a script's text when it is registered (``Script.constants``): a quota
# setting changes only with a restart (quotad.reload), so no call sends them or parses them. The
# script's SHA is its process's settings' (processes with other settings load their own).
ACCOUNT_CONSTANTS = ("slice", "live_ttl", "stopped_ttl", "usage_ttl", "rate", "slack", "max_age")


def constants(settings: QuotaSettings) -> dict[str, int]:
    """The values of the constants the scripts may declare, from the process's settings."""
    return {"slice": settings.slice_bytes, "live_ttl": settings.session_ttl_seconds,
            "stopped_ttl": settings.stopped_ttl_seconds, "usage_ttl": settings.usage_ttl_days * 86400,
            "rate": settings.max_report_rate_bps // 8, "slack": settings.max_report_slack_bytes,
            "max_age": settings.stopped_ttl_seconds}


# -- ARGV builders, one per script ------------------------------------------------------------------

def create_contract_argv(now: Arg, calendar: Arg, plan: Arg, start_day: Arg, start_month: Arg,
                         start_bundle: Arg, bundle: Arg, max_lines: Arg) -> list[Arg]:
    return [now, calendar, plan, start_day, start_month, start_bundle, bundle, max_lines]


def add_line_argv(now: Arg, calendar: Arg, msisdn: Arg, iccid: Arg, imsi: Arg, card_type: Arg,
                  voice: Arg) -> list[Arg]:
    return [now, calendar, msisdn, iccid, imsi, card_type, voice]


def attach_argv(attach_clock: Arg, check_identity: Arg, imsi: Arg, gateway: Arg, sid: Arg, new_gen: Arg,
                expected_gen: Arg, asid: Arg, slot: Arg, spare: Arg) -> list[Arg]:
    return [attach_clock, check_identity, imsi, gateway, sid, new_gen, expected_gen, asid, slot, spare]


def account_argv(account_clock: Arg, gateway: Arg, sid: Arg, status: Arg, octets: Arg, exempt: Arg, framed: Arg,
                 asid: Arg, event: Arg, session_time: Arg) -> list[Arg]:
    return [account_clock, gateway, sid, status, octets, exempt, framed, asid, event, session_time]


def clock_argv(now: Arg, calendar: Arg) -> list[Arg]:
    """line_facts.lua and view.lua take the clock alone."""
    return [now, calendar]


def set_line_argv(now: Arg, calendar: Arg, field: Arg, value: Arg) -> list[Arg]:
    return [now, calendar, field, value]


def charge_argv(now: Arg, calendar: Arg, units: Arg, max_units: Arg, unit_bytes: Arg, expiry: Arg, entry: Arg,
                cutoff: Arg) -> list[Arg]:
    return [now, calendar, units, max_units, unit_bytes, expiry, entry, cutoff]


def add_card_argv(now: Arg, calendar: Arg, iccid: Arg, imsi: Arg, card_type: Arg, reason: Arg,
                  suspend: Arg) -> list[Arg]:
    return [now, calendar, iccid, imsi, card_type, reason, suspend]


def activate_card_argv(now: Arg, calendar: Arg, iccid: Arg) -> list[Arg]:
    return [now, calendar, iccid]


def top_up_argv(now: Arg, calendar: Arg, slice: Arg) -> list[Arg]:
    return [now, calendar, slice]


def cas_argv(expected: Arg, new: Arg) -> list[Arg]:
    """set_speed.lua and index_cas.lua: a compare-and-set."""
    return [expected, new]


def prune_live_argv(sids: list[str]) -> list[Arg]:
    return sids


def ip_alloc_argv(owner: Arg, now: Arg, expiry: Arg, span: Arg) -> list[Arg]:
    return [owner, now, expiry, span]


def ip_renew_argv(owner: Arg, expiry: Arg) -> list[Arg]:
    return [owner, expiry]


def ip_release_argv(owner: Arg) -> list[Arg]:
    return [owner]


def ip_adopt_argv(owner: Arg, expiry: Arg, address: Arg, line_prefix: Arg) -> list[Arg]:
    return [owner, expiry, address, line_prefix]


def end_session_argv(sid: Arg, stopped_ttl: Arg, now: Arg) -> list[Arg]:
    return [sid, stopped_ttl, now]


def drop_placeholder_argv(sid: Arg) -> list[Arg]:
    return [sid]


def ps_commit_argv(version: Arg, doc: Arg, records: list[str]) -> list[Arg]:
    return [version, doc, *records]


def ps_attach_argv(today: Arg, imsi: Arg) -> list[Arg]:
    return [today, imsi]


def ps_account_argv(sid: Arg, status: Arg, octets: Arg, nas: Arg, asid: Arg, now: Arg, live_ttl: Arg,
                    stopped_ttl: Arg, usage_ttl: Arg, msisdn: Arg, event: Arg, session_time: Arg, rate: Arg,
                    slack: Arg, max_age: Arg, gw: Arg) -> list[Arg]:
    return [sid, status, octets, nas, asid, now, live_ttl, stopped_ttl, usage_ttl, msisdn, event, session_time,
            rate, slack, max_age, gw]


# -- the scripts ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Script:
    """One script: the names of its KEYS and ARGV as its header gives them, the function that
    builds its ARGV, the files prepended to it, in order, and the constants written into it."""

    name: str
    keys: tuple[str, ...]
    argv: tuple[str, ...]
    build: Callable[..., list[Arg]]
    prelude: tuple[str, ...] = ()
    constants: tuple[str, ...] = ()

    def source(self, values: Mapping[str, int] | None = None) -> str:
        """The text sent to Redis: the prepended files, a line that sets the script's constants
        (from ``values``: ``constants(settings)``), then the script."""
        parts = [_read(name) for name in self.prelude]
        if self.constants:
            given = values or {}
            missing = [name for name in self.constants if name not in given]
            if missing:
                raise ValueError(f"{self.name}.lua: no value for constants {', '.join(missing)}")
            literals = ", ".join(str(int(given[name])) for name in self.constants)
            parts.append(f"local {', '.join(self.constants)} = {literals}  -- Constants (quota/lua.py)")
        parts.append(_read(self.name))
        return "\n".join(parts)


def _read(name: str) -> str:
    return resources.files("quotad.quota").joinpath("scripts", f"{name}.lua").read_text()


LIB = ("_lib",)
_IP_ADOPT_ARGV = ("owner", "expiry", "address", "line_prefix")
_PS_ACCOUNT_ARGV = ("sid", "status", "octets", "nas", "asid", "now", "live_ttl", "stopped_ttl", "usage_ttl",
                    "msisdn", "event", "session_time", "rate", "slack", "max_age", "gw")
SCRIPTS = {s.name: s for s in (
    Script("create_contract", POOL, (*CLOCK, "plan", "start_day", "start_month", "start_bundle", "bundle",
                                     "max_lines"), create_contract_argv, LIB),
    Script("add_line", (*POOL, "lines", "line"), (*CLOCK, "msisdn", "iccid", "imsi", "card_type", "voice"),
           add_line_argv, LIB),
    Script("attach", (*SESSION_KEYS, "spare_session?"),
           (*GROUPS["attach_clock"], "check_identity", "imsi", "nas", "gw", "sid", "new_gen", "expected_gen", "asid",
            "slot", "spare"), attach_argv, LIB),
    Script("account", (*SESSION_KEYS, "event_day"),
           (*GROUPS["account_clock"], "nas", "gw", "sid", "status", "octets", "exempt", "framed", "asid", "event",
            "session_time"), account_argv, (*LIB, "_counters"), ACCOUNT_CONSTANTS),
    Script("line_facts", LINE_KEYS, CLOCK, clock_argv, LIB),
    Script("set_line", LINE_KEYS, (*CLOCK, "field", "value"), set_line_argv, LIB),
    Script("charge", (*POOL, "charges"),
           (*CLOCK, "units", "max_units", "unit_bytes", "expiry", "entry", "cutoff"), charge_argv, LIB),
    Script("view", POOL, CLOCK, clock_argv, LIB),
    Script("add_card", LINE_KEYS, (*CLOCK, "iccid", "imsi", "card_type", "reason", "suspend"), add_card_argv, LIB),
    Script("activate_card", LINE_KEYS, (*CLOCK, "iccid"), activate_card_argv, LIB),
    Script("top_up", LINE_KEYS, (*CLOCK, "slice"), top_up_argv, LIB),
    Script("set_speed", ("line",), ("expected", "new"), cas_argv),
    Script("index_cas", ("index",), ("expected", "new"), cas_argv),
    Script("prune_live", ("live", "sessions..."), ("sids...",), prune_live_argv),
    Script("ip_alloc", IP_POOL, ("owner", "now", "expiry", "first", "count"), ip_alloc_argv),
    Script("ip_renew", IP_POOL, ("owner", "expiry"), ip_renew_argv),
    Script("ip_release", IP_POOL, ("owner",), ip_release_argv),
    Script("ip_adopt", IP_POOL, _IP_ADOPT_ARGV, ip_adopt_argv),
    Script("end_session", ("live", "session"), ("sid", "stopped_ttl", "now"), end_session_argv),
    Script("drop_placeholder", ("live", "session"), ("sid",), drop_placeholder_argv),
    Script("ps_commit", ("tree", "contract", "lines..."), ("version", "doc", "records..."), ps_commit_argv),
    Script("ps_attach", ("line", "window..."), ("today", "imsi"), ps_attach_argv),
    Script("ps_account", ("line", "live", "session", "event_month", "event_day", "window..."), _PS_ACCOUNT_ARGV,
           ps_account_argv, ("_counters",)),
)}


# -- replies ----------------------------------------------------------------------------------------

def text(value: Any) -> str:
    """A reply value as text ('' for Lua's false / nil)."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


def optional_text(value: Any) -> str | None:
    """A reply that is a value or false (ip_*.lua, end_session.lua, drop_placeholder.lua)."""
    return None if value is None else text(value)


class Refusal(NamedTuple):
    """{'ERR', kind, field[, detail]}: kind is notfound, conflict or limit (store errors)."""

    kind: str
    field: str
    detail: str


def refusal(res: list[Any]) -> Refusal | None:
    """The refusal a provisioning script replied with, or None (it went through)."""
    if text(res[0]) != "ERR":
        return None
    return Refusal(text(res[1]), text(res[2]), text(res[3]) if len(res) > 3 else "")


def facts(raw: list[Any]) -> LineFacts:
    """_lib.lua's facts: plan, status, coupon, held, pool, low_3day, speed (the store's clients
    answer bytes: decoded here without a call per field, as on every request)."""
    plan, status, coupon, held, pool, low, speed = raw
    return LineFacts(plan.decode(), status.decode(), coupon == b"1", int(held), int(pool), int(low),
                     speed.decode() if speed else "")


@dataclass(slots=True)
class AttachReply:
    """attach.lua's reply. ``status`` is 'ok', 'retry' (``session_id`` names the slot's latest
    session) or the reason of a refusal."""

    status: str
    session_id: str = ""
    granted: int = 0
    facts: LineFacts | None = None
    generation: str = ""
    same: bool = False  # the session is the live one the caller expected (quota.renewals)
    new: bool = False  # the session record was made now


def attach_reply(res: list[Any]) -> AttachReply:
    status = res[0].decode()
    if status == "ok":
        return AttachReply(status, res[6].decode(), int(res[1]), facts(res[2]), text(res[3]), res[4] == 1,
                           res[5] == 1)
    return AttachReply(status, res[1].decode() if status == "retry" else "")


_OUTCOMES = {outcome.value.encode(): outcome for outcome in ReportOutcome}


def account_reply(res: list[Any]) -> AccountResult | None:
    """account.lua's reply; None for a line the store does not know."""
    outcome = _OUTCOMES.get(res[0])
    if outcome is None:  # 'unknown'
        return None
    return AccountResult(facts(res[6]), int(res[1]), int(res[2]), int(res[3]), int(res[4]), int(res[5]), outcome,
                         res[7] == 1)


def facts_reply(res: list[Any]) -> LineFacts | None:
    """line_facts.lua, add_card.lua, set_line.lua: the line's facts (None: no such line, or refused)."""
    return facts(res[1]) if text(res[0]) in ("ok", "OK") else None


class TopUp(NamedTuple):
    granted: int
    facts: LineFacts


def top_up_reply(res: list[Any]) -> TopUp | None:
    """top_up.lua's reply; None: no such line."""
    return TopUp(int(res[1]), facts(res[2])) if text(res[0]) == "ok" else None


class PoolView(NamedTuple):
    plan: str
    start_date: str
    buckets: list[Bucket]


def view_reply(res: list[Any]) -> PoolView | None:
    """view.lua's reply; None: no such contract."""
    if text(res[0]) != "ok":
        return None
    rest = res[3:]
    buckets = [Bucket(id=text(rest[i]), kind=text(rest[i + 1]), size=int(rest[i + 2]), left=int(rest[i + 3]),
                      expires_at=float(rest[i + 4])) for i in range(0, len(rest), 5)]
    return PoolView(text(res[1]), text(res[2]), buckets)


class Activation(NamedTuple):
    """activate_card.lua's reply (past a refusal): ``old`` is None when the card was the line's already."""

    card: Card
    old: Card | None
    reason: str
    facts: LineFacts


def activate_card_reply(res: list[Any]) -> Activation:
    card = Card(*(text(v) for v in res[1]))
    old = None if text(res[0]) == "SAME" else Card(*(text(v) for v in res[2]))
    return Activation(card, old, text(res[3]), facts(res[4]))


class Purchase(NamedTuple):
    """charge.lua's reply (past a refusal): the coupon bucket made and its size."""

    bucket_id: str
    size: int


def charge_reply(res: list[Any]) -> Purchase:
    return Purchase(text(res[1]), int(res[2]))
