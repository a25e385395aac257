"""Plain dataclasses of the quota domain: what crosses the store's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# Accounting status types (RFC 2866 Acct-Status-Type).
ACCT_START = 1
ACCT_STOP = 2
ACCT_INTERIM = 3
ACCT_ON = 7
ACCT_OFF = 8

SPEEDS = ("high", "low", "restricted")
STATUSES = ("active", "suspended", "terminated")
# Why a line gets a new card: R-32 (type change; the old card works until the new one is
# activated) or R-33 (lost, broken; the line is suspended until then).
CARD_REASONS = ("type-change", "lost", "broken")


@dataclass(slots=True, frozen=True)
class LineRef:
    """A line (MSISDN) under its contract: all a script needs to find the line's keys."""

    contract_id: str
    msisdn: str


@dataclass(slots=True)
class QuotaSettings:
    """Quota engine settings; the defaults are the shipped configuration."""

    slice_bytes: int = 10_000_000
    timezone: str = "Asia/Tokyo"
    coupon_unit_bytes: int = 100_000_000
    max_units_per_month: int = 30
    ip_range: str = "100.64.0.0/16"
    lease_seconds: int = 7200
    # A live session nobody reports on for this long is forgotten (the gateway lost the Stop).
    session_ttl_seconds: int = 3 * 86400
    # A stopped session's last counters are kept this long, so a retransmitted Stop counts once.
    # It is also the oldest report accepted (by its event time, RFC 2866 Acct-Delay-Time or
    # Event-Timestamp): an older one could be a resend of a session whose record is gone, so it
    # is refused (ReportOutcome.TOO_OLD) rather than counted a second time.
    stopped_ttl_seconds: int = 3 * 86400
    # The most a report may add: what the session could carry at this rate since its previous
    # report (or since it began), plus the slack. Past it the report is refused whole before any
    # write (ReportOutcome.IMPLAUSIBLE): 10 Gbit/s is above any line's shaped speed, and the slack
    # (50 GB) covers reports whose timing cannot be trusted (a gateway's clock, traces replayed
    # faster than real time). A corrupt counter (2^31 gigawords, 9.2e18 octets) is far past both.
    max_report_rate_bps: int = 10_000_000_000
    max_report_slack_bytes: int = 50_000_000_000
    # Per-day usage counters are kept this many days (R-22 needs 3, R-35 the 3 before today).
    usage_ttl_days: int = 8
    # Charge history kept this long (R-35 shows the last 3 months).
    charge_history_days: int = 400
    # Pending index claims of an add_line that died half-way lapse after this.
    claim_ttl_seconds: int = 60
    # Redis calls in flight per store; more wait (redis-py's cluster pools fail instead of waiting).
    max_in_flight: int = 64
    # IMSI/MSISDN → line lookups are remembered in process this long (0: never). A stale entry
    # is harmless: the attach script checks the card's IMSI against the line (card_replaced).
    index_cache_seconds: float = 5.0
    index_cache_entries: int = 200_000
    # Leases this process renewed lately, per generation (quota.renewals; ~340 bytes an entry).
    lease_memo_entries: int = 100_000


@dataclass(slots=True)
class Bucket:
    """One coupon of a contract's pool."""

    id: str
    kind: str  # "bundle" | "coupon"
    size: int
    left: int
    expires_at: float


# LineFacts.pool and .low_3day of an attach or a report when the speed does not depend on them
# (coupon switch on and data held: high, policy.decide): the request path does not read them.
NOT_READ = -1


@dataclass(slots=True)
class LineFacts:
    """What the policy needs to know about a line, read atomically with the change that made it.
    From an attach or a report, ``pool`` and ``low_3day`` are NOT_READ when ``coupon_on`` and
    ``held > 0`` (the speed is high whatever they are); ``QuotaStore.line_facts`` reads them all."""

    plan: str
    status: str
    coupon_on: bool
    held: int
    pool: int
    low_3day: int
    speed: str  # last decided speed class: "high" | "low" | "restricted" | "" (never decided)


@dataclass(slots=True)
class AttachRequest:
    """A SIM asks to start (or re-authorize) a data session."""

    ref: LineRef
    imsi: str | None
    session_id: str
    nas_ip: str
    now: float
    # refuse a voice line whose contract holder's identity is not verified. The RADIUS
    # access path always asks; store-level callers that only exercise the pool may leave it off.
    check_identity: bool = False
    # The gateway the session runs on (aaa.sessionid.gateway_of): its sessions end together when
    # it restarts (Accounting-On/Off). "" keeps the session out of any gateway's set.
    gateway: str = ""
    # The gateway's own Acct-Session-Id when it differs from session_id (CoA names it).
    acct_session_id: str = ""
    # For an Access-Request that names no session: its slot (gateway, SIM and APN; aaa.access).
    # session_id is then a new id, used if the attach is a new session (attach.lua says when).
    slot: str = ""


@dataclass(slots=True)
class AttachResult:
    """Outcome of an attach: refused with a reason, or accepted with facts, slice and address."""

    ok: bool
    # "suspended" | "card_replaced" | "card_pending" | "terminated" | "identity_unverified" | "unknown" | "no_address"
    reason: str | None
    facts: LineFacts | None
    granted: int
    framed_ip: str | None
    session_id: str = ""  # the session recorded (Class names it)


class ReportOutcome(Enum):
    """What became of an accounting report. Every one is acknowledged to the gateway (a resend
    would fare the same); only COUNTED changes any state."""

    COUNTED = "counted"  # its new usage (maybe none) is counted
    STALE = "stale"  # older (event time) than the session's latest report: out of order
    ENDED = "ended"  # of a session that has ended (Stop, gateway restart): late or resent
    TOO_OLD = "too_old"  # older than the session records are kept: could be counted twice
    IMPLAUSIBLE = "implausible"  # more than the session could have carried: refused whole


@dataclass(slots=True)
class AccountingReport:
    """One accounting report, with cumulative session counters (gigawords folded in)."""

    ref: LineRef
    session_id: str
    status: int
    octets: int
    nas_ip: str
    now: float
    framed_ip: str | None = None
    exempt_octets: int = 0
    # The gateway's Acct-Session-Id when it differs from session_id (the id quotad gave the
    # session in Class at attach, for gateways whose Access-Request carries none).
    acct_session_id: str = ""
    # When the counters were read (RFC 2866 §5.2: arrival minus Acct-Delay-Time, or
    # Event-Timestamp); None: now. Usage is booked on this instant's Japan day.
    event_time: float | None = None
    # Acct-Session-Time, when sent: bounds what a first report of a session may carry.
    session_time: int | None = None
    # The gateway (aaa.sessionid.gateway_of), for its set of sessions.
    gateway: str = ""

    @property
    def at(self) -> float:
        return self.now if self.event_time is None else self.event_time


@dataclass(slots=True)
class AccountResult:
    """Where a report's new usage went, and the line's facts after it."""

    facts: LineFacts
    added: int  # octets newly counted by this report (0 for a replay)
    debited: int  # taken from the line's held data
    low_added: int  # counted as low-speed usage
    overrun_added: int  # used beyond what the pool could grant
    granted: int  # drawn from the pool into held data by this report
    outcome: ReportOutcome = ReportOutcome.COUNTED
    fresh: bool = False  # a new session began under its id with this report (account.lua)


@dataclass(slots=True)
class Session:
    """A live session of a line: where to send a CoA."""

    session_id: str
    nas_ip: str
    framed_ip: str | None
    imsi: str | None
    started: float
    acct_session_id: str = ""  # the gateway's id of the session (CoA/Disconnect name it)


@dataclass(slots=True, frozen=True)
class Card:
    """A line's card (R-32, R-33)."""

    iccid: str
    imsi: str
    card_type: str


@dataclass(slots=True)
class CardActivation:
    """Outcome of activating a line's new card: the card it replaced (None when the card was
    already the line's) and the line's facts after."""

    card: Card
    old: Card | None
    reason: str
    facts: LineFacts


@dataclass(slots=True)
class LineView:
    """One line of a contract, for queries (R-35)."""

    msisdn: str
    iccid: str
    imsi: str
    card_type: str
    voice: bool
    status: str
    coupon_on: bool
    held: int
    speed: str
    overrun: int
    sessions: int


@dataclass(slots=True)
class ContractView:
    """A contract's pool by bucket and its lines (R-35)."""

    contract_id: str
    plan: str
    start_date: str  # "YYYYMMDD"
    pool: int
    buckets: list[Bucket] = field(default_factory=list)
    lines: list[LineView] = field(default_factory=list)


@dataclass(slots=True)
class DayUsage:
    """A line's usage on one Japan day, high and low speed apart (R-35)."""

    day: str
    high: int
    low: int


@dataclass(slots=True)
class Charge:
    """One coupon purchase from the charge history (R-11, R-35)."""

    at: float
    units: int
    who: str
    bucket_id: str


# Counters past 2^53 octets (8 PiB) lose precision in Lua's doubles: no session carries that much.
MAX_COUNTER = 1 << 53


def precheck(report: AccountingReport, max_age: float) -> ReportOutcome | None:
    """The checks of a report that need no Redis, made before anything is sent: counters Lua
    cannot hold exactly, and a report older than session records are kept (``max_age``: it could
    be a resend of a session whose record is gone, and be counted twice). None: go on."""
    if not (0 <= report.octets <= MAX_COUNTER and 0 <= report.exempt_octets <= MAX_COUNTER):
        return ReportOutcome.IMPLAUSIBLE
    if report.at < report.now - max_age:
        return ReportOutcome.TOO_OLD
    return None
