"""Public-safety lines on the RADIUS path (R-62, R-63): fixed addresses, no capacity throttling,
usage counted for billing, the heavy-use restriction.

A request is handled here when its APN (Called-Station-Id) is one of `publicsafety.apns`; an
accounting report without it comes here when the consumer store does not know the line. The
APN, credential and roaming checks of aaa.access apply first, unchanged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from quotad import metrics
from quotad.aaa.profiles import EncodedProfile
from quotad.aaa.rejects import Reject
from quotad.aaa.speed import SpeedChanges
from quotad.aaa.values import ipv4_bytes, ipv4_text
from quotad.policy.decide import HIGH, RESTRICTED, profile_name
from quotad.publicsafety import rules
from quotad.publicsafety.settings import PublicSafetySettings
from quotad.publicsafety.store import PublicSafetyStore
from quotad.quota.model import AccountingReport, LineRef, ReportOutcome
from quotad.quota.store import QuotaStore
from quotad.radius import packet as rp


@dataclass(frozen=True, slots=True)
class PsDecision:
    """A reject reason, or the attributes of the Access-Accept (profile, fixed addresses)."""

    reason: str | None
    attributes: bytes = b""


def ipv6_prefix_attr(prefix: str) -> bytes:
    """Framed-IPv6-Prefix (RFC 3162): reserved, prefix length, the prefix's significant octets."""
    net = ipaddress.IPv6Network(prefix)
    octets = (net.prefixlen + 7) // 8
    return rp.attr(rp.FRAMED_IPV6_PREFIX, bytes((0, net.prefixlen)) + net.network_address.packed[:octets])


def ipv6_prefix_text(value: bytes | None) -> str | None:
    """The prefix a request names in Framed-IPv6-Prefix, as text; "" when malformed."""
    if value is None:
        return None
    if len(value) < 2 or value[1] > 128 or len(value) - 2 > 16:
        return ""
    try:
        return str(ipaddress.IPv6Network((value[2:].ljust(16, b"\0"), value[1]), strict=False))
    except ValueError:
        return ""


class PublicSafetyAaa:
    """Attach and accounting of public-safety lines."""

    def __init__(self, settings: PublicSafetySettings, store: PublicSafetyStore, quota: QuotaStore,
                 profiles: dict[str, EncodedProfile], now: Callable[[], float], speeds: SpeedChanges) -> None:
        self.apns = frozenset(name.lower() for name in settings.apns)
        self.settings = settings
        self.store = store
        self.quota = quota
        self.profiles = profiles
        self.now = now
        self.speeds = speeds
        self._counted = metrics.ACCOUNTING_OCTETS.labels("publicsafety")

    def serves(self, apn: str | None) -> bool:
        """True if the APN carries public-safety lines."""
        return apn is not None and apn.lower() in self.apns

    def _speed(self, window_bytes: int) -> str:
        return RESTRICTED if rules.heavy_use_restricted(window_bytes, self.settings.heavy_use_bytes) else HIGH

    async def authorize(self, pkt: rp.Packet, ref: LineRef, imsi: str | None, session_id: str) -> PsDecision:
        """R-3 / R-62 / R-63: the line attaches with its fixed addresses, at high speed unless heavy
        use; a change of speed is pushed to the line's other sessions (the Accept tells this one)."""
        found = await self.store.attach(ref.contract_id, ref.msisdn, imsi, self.now(), self.settings.heavy_use_days)
        if found.reason is not None:
            return PsDecision(found.reason)
        asked4 = pkt.get(rp.FRAMED_IP_ADDRESS)
        asked6 = ipv6_prefix_text(pkt.get(rp.FRAMED_IPV6_PREFIX))
        if not (rules.requested_address_allowed(ipv4_text(asked4) if asked4 is not None else None, found.ipv4)
                and rules.requested_address_allowed(asked6, found.ipv6_prefix)):
            return PsDecision(Reject.ADDRESS_NOT_ALLOWED)
        speed = self._speed(found.window_bytes)
        await self.speeds.apply(ref, found.speed, speed, told=session_id, with_grant=False)
        attrs = (self.profiles[profile_name(speed, rp.tgpp_rat_type(pkt))].attributes
                 + rp.attr(rp.FRAMED_IP_ADDRESS, ipv4_bytes(found.ipv4)) + ipv6_prefix_attr(found.ipv6_prefix))
        return PsDecision(None, attrs)

    async def account(self, report: AccountingReport) -> ReportOutcome | None:
        """R-63 / R-71: count the report once; its outcome, or None if the line is not a
        public-safety line."""
        result = await self.store.account(report, self.settings.heavy_use_days, self.quota.settings)
        if result is None:
            return None
        if result.outcome is ReportOutcome.COUNTED:
            if result.added:
                self._counted.inc(result.added)
            # Public-safety lines hold no slice: the CoA carries the speed alone.
            await self.speeds.apply(report.ref, result.speed, self._speed(result.window_bytes), with_grant=False)
        return result.outcome
