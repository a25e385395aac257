"""Accounting-Request → usage → quota.account → policy → Accounting-Response.

Usage is Acct-Input/Output-Octets with their Gigawords; the part the gateway counted against the
zero-rating rule (R-23: Quotad-Exempt-Input/Output-Octets, with Quotad-Exempt-*-Gigawords) is
counted but not debited.

The line comes from the Class attribute quotad put in the Access-Accept; without it (a gateway
that does not echo Class), from 3GPP-IMSI or Calling-Station-Id. The session is the one named in
Class, else the gateway's Acct-Session-Id on that gateway (aaa.sessionid). The response is sent
only once the report is stored in Redis (R-71): on a Redis failure nothing is sent and the
gateway retries; the store counts each report once whatever the retries (cumulative counters per
session). A report the store cannot count safely (model.ReportOutcome: out of order, of an ended
session, too old, implausible) is acknowledged, since a resend would fare the same, and counted
in quotad_accounting_not_counted_total by reason.

Usage is dated by its event (RFC 2866 §5.2): Event-Timestamp when sent and not in the future,
else the arrival less Acct-Delay-Time. Accounting-On/Off (the gateway restarted) ends every
session of that gateway as a Stop would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from redis.exceptions import RedisError

from quotad import log, metrics
from quotad.aaa import classattr, sessionid
from quotad.aaa.publicsafety import PublicSafetyAaa
from quotad.aaa.speed import SpeedChanges
from quotad.aaa.values import ipv4_text, text
from quotad.quota.errors import NotFound
from quotad.quota.model import AccountingReport, AccountResult, LineRef, ReportOutcome
from quotad.radius import packet as rp
from quotad.radius.clients import Client

_log = log.get("quotad.accounting")

STATUS_START, STATUS_STOP, STATUS_INTERIM, STATUS_ON, STATUS_OFF = 1, 2, 3, 7, 8
# quotad VSAs (dictionary.quotad) with the session's zero-rated octets.
EXEMPT_IN, EXEMPT_OUT, EXEMPT_IN_GIGAWORDS, EXEMPT_OUT_GIGAWORDS = 6, 7, 9, 10
_EXEMPT_SUBTYPES = frozenset((EXEMPT_IN, EXEMPT_OUT, EXEMPT_IN_GIGAWORDS, EXEMPT_OUT_GIGAWORDS))
_QUOTAD_VENDOR = rp.VENDOR_QUOTAD.to_bytes(4, "big")

# An Event-Timestamp this far ahead of our clock is a gateway's clock error: the arrival is used.
MAX_CLOCK_AHEAD = 300.0


class AccountStore(Protocol):
    """What the accounting path asks of the store (quota.store.QuotaStore; a fake in unit tests).
    ``account`` raises quota.store.NotFound for a line the consumer store does not have."""

    async def find_line(self, imsi: str | None, msisdn: str | None) -> LineRef | None: ...

    async def account(self, report: AccountingReport) -> AccountResult: ...

    async def end_gateway_sessions(self, gateway: str, now: float, batch: int = 100) -> int: ...


class AccountingHandler:
    def __init__(
        self,
        store: AccountStore,
        speeds: SpeedChanges,
        now: Callable[[], float],
        publicsafety: PublicSafetyAaa | None = None,
    ):
        self.publicsafety = publicsafety
        self.store = store
        self.speeds = speeds
        self.now = now
        self._stored = metrics.RADIUS_REQUESTS.labels("accounting", "stored")
        self._unknown = metrics.RADIUS_REQUESTS.labels("accounting", "unknown_line")
        self._nas = metrics.RADIUS_REQUESTS.labels("accounting", "nas_on_off")
        self._redis_errors = metrics.REDIS_ERRORS.labels("account")
        self._octets = {k: metrics.ACCOUNTING_OCTETS.labels(k) for k in ("debited", "low", "overrun")}
        self._not_counted: dict[ReportOutcome, Any] = {
            o: metrics.ACCOUNTING_NOT_COUNTED.labels(o.value) for o in ReportOutcome if o is not ReportOutcome.COUNTED}
        self._gateway_ended = metrics.SESSIONS_ENDED.labels("gateway_restart")
        self._last_log: dict[ReportOutcome, float] = {}

    async def handle(self, pkt: rp.Packet, client: Client) -> bytes | None:
        status = pkt.get_int(rp.ACCT_STATUS_TYPE)
        try:
            if status in (STATUS_ON, STATUS_OFF):
                # The gateway restarted: its sessions are gone (their addresses go back, R-5).
                self._nas.inc()
                gateway = sessionid.gateway_of(pkt, client)
                ended = await self.store.end_gateway_sessions(gateway, self.now())
                self._gateway_ended.inc(ended)
                _log.info("gateway_restarted", gateway=gateway, client=client.name, sessions_ended=ended)
            else:
                await self._account(pkt, client, status or 0)
        except RedisError as exc:
            self._redis_errors.inc()
            _log.warning("redis_error", op="account", error=type(exc).__name__)
            return None
        return rp.encode_response(
            rp.ACCOUNTING_RESPONSE, pkt.identifier, pkt.authenticator, client.secret, b"",
            pkt.get_all(rp.PROXY_STATE), message_authenticator=False,
        )

    async def _account(self, pkt: rp.Packet, client: Client, status: int) -> None:
        info = classattr.decode(pkt.get(rp.CLASS))
        acct_session_id = pkt.get_str(rp.ACCT_SESSION_ID) or ""
        gateway = sessionid.gateway_of(pkt, client)
        # The session is known by the id given at attach (in Class) when there is one, so the
        # attach's slice and address lease belong to the session the gateway then reports.
        session_id = (info.session_id if info else "") or (
            sessionid.of_gateway(gateway, acct_session_id) if acct_session_id else "")
        if info is not None:
            ref: LineRef | None = LineRef(info.contract_id, info.msisdn)
        else:
            imsi = text(pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI))
            ref = await self.store.find_line(imsi, pkt.get_str(rp.CALLING_STATION_ID))
        if ref is None or not session_id:
            # Nothing to count it against: acknowledged (a retry would not help) and counted.
            self._unknown.inc()
            _log.info("accounting_unknown_line", has_session_id=bool(session_id))
            return
        now = self.now()
        report = AccountingReport(
            ref=ref,
            session_id=session_id,
            status=status,
            octets=_octets(pkt),
            exempt_octets=_exempt_octets(pkt),
            nas_ip=ipv4_text(pkt.get(rp.NAS_IP_ADDRESS)),
            framed_ip=ipv4_text(pkt.get(rp.FRAMED_IP_ADDRESS)) or None,
            now=now,
            # kept to name the session in CoA/Disconnect, when it fits in one attribute
            acct_session_id=acct_session_id
            if acct_session_id != session_id and len(acct_session_id.encode()) <= rp.MAX_VALUE else "",
            event_time=event_time(pkt, now),
            session_time=pkt.get_int(rp.ACCT_SESSION_TIME),
            gateway=gateway,
        )
        ps = self.publicsafety
        # Public-safety lines: by their APN, or when the consumer store does not know the line.
        if ps is not None and ps.serves(pkt.get_str(rp.CALLED_STATION_ID)) and await self._public_safety(report):
            return
        try:
            result = await self.store.account(report)
        except NotFound:
            if ps is not None and await self._public_safety(report):
                return
            self._unknown.inc()
            _log.info("accounting_unknown_line", contract=ref.contract_id)
            return
        self._stored.inc()
        if result.outcome is not ReportOutcome.COUNTED:
            self._not_counted_report(report, result.outcome)
            return
        self._count(result)
        facts = result.facts
        speed = self.speeds.decide(facts)
        if speed != facts.speed:  # most reports change nothing: no coroutine then
            await self.speeds.apply(ref, facts.speed, speed)

    def _not_counted_report(self, r: AccountingReport, outcome: ReportOutcome) -> None:
        """Count it by reason; log it at most once a second per reason."""
        self._not_counted[outcome].inc()
        now = r.now
        if now - self._last_log.get(outcome, -1e9) >= 1.0:
            self._last_log[outcome] = now
            _log.warning("accounting_not_counted", reason=outcome.value, contract=r.ref.contract_id,
                         msisdn=r.ref.msisdn, session=r.session_id, status=r.status, octets=r.octets,
                         age=round(r.now - r.at, 1))

    async def _public_safety(self, r: AccountingReport) -> bool:
        assert self.publicsafety is not None
        outcome = await self.publicsafety.account(r)
        if outcome is None:
            return False
        self._stored.inc()
        if outcome is not ReportOutcome.COUNTED:
            self._not_counted_report(r, outcome)
        return True

    def _count(self, result: AccountResult) -> None:
        if result.debited:
            self._octets["debited"].inc(result.debited)
        if result.low_added:
            self._octets["low"].inc(result.low_added)
        if result.overrun_added:
            self._octets["overrun"].inc(result.overrun_added)
        if result.granted:
            metrics.SLICES.inc()
            metrics.SLICE_BYTES.inc(result.granted)


def event_time(pkt: rp.Packet, now: float) -> float | None:
    """When the report's counters were read (RFC 2866 §5.2, RFC 2869 §5.3): Event-Timestamp unless
    it is ahead of our clock, else the arrival less Acct-Delay-Time; None for the arrival itself."""
    stamp = pkt.get_int(rp.EVENT_TIMESTAMP)
    if stamp is not None and stamp <= now + MAX_CLOCK_AHEAD:
        return min(float(stamp), now)
    delay = pkt.get_int(rp.ACCT_DELAY_TIME)
    if delay:
        return now - delay
    return None


def _octets(pkt: rp.Packet) -> int:
    return rp.octets64(pkt.get_int(rp.ACCT_INPUT_OCTETS), pkt.get_int(rp.ACCT_INPUT_GIGAWORDS)) + rp.octets64(
        pkt.get_int(rp.ACCT_OUTPUT_OCTETS), pkt.get_int(rp.ACCT_OUTPUT_GIGAWORDS)
    )


def _exempt_octets(pkt: rp.Packet) -> int:
    """R-23: the session's cumulative zero-rated octets (quotad VSAs 6/7, gigawords 9/10), read
    in one pass over the attributes (accounting is the hot path)."""
    found: dict[int, int] = {}
    for t, v in pkt.attrs:
        if t != rp.VENDOR_SPECIFIC or v[:4] != _QUOTAD_VENDOR:
            continue
        # One 4-octet sub-attribute (how gateways send them), else the general layout.
        subs = [(v[4], v[6:])] if len(v) == 10 and v[5] == 6 else rp.split_vsa(v) or ()
        for sub, value in subs:
            if sub in _EXEMPT_SUBTYPES and sub not in found and len(value) == 4:
                found[sub] = int.from_bytes(value, "big")
    if not found:
        return 0
    return rp.octets64(found.get(EXEMPT_IN), found.get(EXEMPT_IN_GIGAWORDS)) + rp.octets64(
        found.get(EXEMPT_OUT), found.get(EXEMPT_OUT_GIGAWORDS))
