"""Access-Request → credentials → line → quota.attach → policy → Access-Accept / Access-Reject.

The order of checks, each with its own reject reason (counted, logged at info, and told to the
gateway in Reply-Message); none before the SIM's asks Redis anything:
  R-1 unknown APN (Called-Station-Id) · wrong user or password (PAP or CHAP); a re-authorization
      (Service-Type Authorize-Only, RFC 5176 §3.1) may carry no password instead
  R-4 roaming (3GPP-SGSN-MCC-MNC not a home network of the APN)
  R-2 unknown SIM (by 3GPP-IMSI, else Calling-Station-Id)
      a re-authorization without a password must name a live session of the line on the same
      gateway (by Class, Acct-Session-Id, or a State holding quotad's Class value): else no_session
  R-3 line not active (suspended, card replaced or not yet active, terminated), then the attach
      script's other refusals: R-50 voice line whose contract holder's identity is not verified
      (identity_unverified), no address left (no_address), before the contract's start day
      (not_started)
Tested in this order by tests/unit/test_access_handler.py.
A Redis failure sends no answer at all: the gateway retries, and nothing half-done is acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError

from quotad import log, metrics
from quotad.aaa import classattr, sessionid
from quotad.aaa.profiles import EncodedProfile
from quotad.aaa.publicsafety import PublicSafetyAaa
from quotad.aaa.rejects import Reject
from quotad.aaa.replyattrs import granted_attr
from quotad.aaa.speed import SpeedChanges
from quotad.aaa.values import ipv4_bytes, ipv4_text, text
from quotad.config import ApnSettings
from quotad.policy.decide import profile_name
from quotad.quota.model import AttachRequest, AttachResult, LineRef
from quotad.radius import packet as rp
from quotad.radius.clients import Client

_log = log.get("quotad.access")

SERVICE_TYPE_AUTHORIZE_ONLY = 17


@dataclass(frozen=True, slots=True)
class Apn:
    name: str
    user: bytes
    password: bytes
    home_networks: frozenset[bytes]
    timers: bytes  # pre-encoded Session-Timeout, Idle-Timeout, Acct-Interim-Interval

    @classmethod
    def from_settings(cls, s: ApnSettings) -> Apn:
        timers = (
            rp.attr_int(rp.SESSION_TIMEOUT, s.session_timeout)
            + rp.attr_int(rp.IDLE_TIMEOUT, s.idle_timeout)
            + rp.attr_int(rp.ACCT_INTERIM_INTERVAL, s.interim_interval)
        )
        return cls(
            s.name.lower(), s.user.encode(), str(s.password).encode(),
            frozenset(n.encode() for n in s.home_networks), timers,
        )


def _credential_less_reauth(pkt: rp.Packet) -> bool:
    """An Authorize-Only Access-Request with no password at all (RFC 5176 §3.1: the NAS asks again
    for a live session, naming it). Message-Authenticator, required on every Access-Request,
    still authenticates it (radius.server)."""
    return (pkt.get_int(rp.SERVICE_TYPE) == SERVICE_TYPE_AUTHORIZE_ONLY and pkt.get(rp.USER_PASSWORD) is None
            and pkt.get(rp.CHAP_PASSWORD) is None)


def session_of(pkt: rp.Packet, gateway: str, ref: LineRef, sim: str, apn: str) -> tuple[str, str, str]:
    """(session id, the gateway's Acct-Session-Id or "", slot) an Access-Request names: the
    session in our Class when it carries one of this line (a re-authorization), else the
    gateway's Acct-Session-Id; else a new id, and the slot (aaa.sessionid.slot_of) whose latest
    session the request may still be (attach.lua decides)."""
    info = classattr.decode(pkt.get(rp.CLASS)) or classattr.decode(pkt.get(rp.STATE))
    asid = pkt.get_str(rp.ACCT_SESSION_ID) or ""
    if info is not None and info.session_id and (info.contract_id, info.msisdn) == (ref.contract_id, ref.msisdn):
        return info.session_id, asid, ""
    if asid:
        return sessionid.of_gateway(gateway, asid), asid, ""
    return sessionid.fresh(), "", sessionid.slot_of(gateway, sim, apn)


class AttachStore(Protocol):
    """What the access path asks of the store (quota.store.QuotaStore; a fake in unit tests)."""

    async def find_line(self, imsi: str | None, msisdn: str | None) -> LineRef | None: ...

    async def is_live(self, ref: LineRef, session_id: str, gateway: str) -> bool: ...

    async def attach(self, req: AttachRequest) -> AttachResult: ...


class AccessHandler:
    def __init__(
        self,
        apns: list[Apn],
        store: AttachStore,
        speeds: SpeedChanges,
        profiles: dict[str, EncodedProfile],
        now: Callable[[], float],
        publicsafety: PublicSafetyAaa | None = None,
    ):
        self.speeds = speeds
        self.publicsafety = publicsafety
        self.apns = {apn.name: apn for apn in apns}
        self.store = store
        self.profiles = profiles
        self.now = now
        self._accepts = metrics.RADIUS_REQUESTS.labels("access", "accept")
        self._rejects = metrics.RADIUS_REQUESTS.labels("access", "reject")
        self._redis_errors = metrics.REDIS_ERRORS.labels("attach")
        self._reject_counters = {r: metrics.RADIUS_REJECTS.labels(r) for r in Reject}

    async def handle(self, pkt: rp.Packet, client: Client) -> bytes | None:
        apn = self._apn(pkt)
        if apn is None:
            return self._reject(pkt, client, Reject.UNKNOWN_APN)
        reauth_only = _credential_less_reauth(pkt)
        if not reauth_only and not self._credentials_ok(pkt, client, apn):
            return self._reject(pkt, client, Reject.BAD_CREDENTIALS)
        visited = pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC)
        if visited is not None and apn.home_networks and visited not in apn.home_networks:
            return self._reject(pkt, client, Reject.ROAMING)
        try:
            return await self._authorize(pkt, client, apn, reauth_only)
        except RedisError as exc:
            self._redis_errors.inc()
            _log.warning("redis_error", op="attach", error=type(exc).__name__)
            return None

    def _apn(self, pkt: rp.Packet) -> Apn | None:
        called = pkt.get(rp.CALLED_STATION_ID)
        if called is None:
            return None
        return self.apns.get(called.decode("utf-8", "replace").lower())

    def _credentials_ok(self, pkt: rp.Packet, client: Client, apn: Apn) -> bool:
        if pkt.get(rp.USER_NAME) != apn.user:
            return False
        hidden = pkt.get(rp.USER_PASSWORD)
        if hidden is not None:
            try:
                return rp.decrypt_password(hidden, client.secret, pkt.authenticator) == apn.password
            except rp.PacketError:
                return False
        chap = pkt.get(rp.CHAP_PASSWORD)
        if chap is not None:
            challenge = pkt.get(rp.CHAP_CHALLENGE) or pkt.authenticator
            return rp.check_chap(chap, challenge, apn.password)
        return False

    async def _authorize(self, pkt: rp.Packet, client: Client, apn: Apn, reauth_only: bool = False) -> bytes:
        imsi = text(pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI))
        msisdn = pkt.get_str(rp.CALLING_STATION_ID)
        ref = await self.store.find_line(imsi, msisdn)
        if ref is None:
            return self._reject(pkt, client, Reject.UNKNOWN_SIM)
        gateway = sessionid.gateway_of(pkt, client)
        session_id, asid, slot = session_of(pkt, gateway, ref, imsi or msisdn or "", apn.name)
        # Without credentials, only a live session of this line on this gateway is re-authorized.
        if reauth_only and (slot or not await self.store.is_live(ref, session_id, gateway)):
            return self._reject(pkt, client, Reject.NO_SESSION)
        if self.publicsafety is not None and self.publicsafety.serves(apn.name):
            return await self._public_safety(pkt, client, apn, ref, session_id, imsi)
        request = AttachRequest(
            ref=ref,
            imsi=imsi,
            session_id=session_id,
            nas_ip=ipv4_text(pkt.get(rp.NAS_IP_ADDRESS)),
            now=self.now(),
            check_identity=True,
            gateway=gateway,
            acct_session_id=asid if len(asid.encode()) <= rp.MAX_VALUE else "",
            slot=slot,
        )
        result = await self.store.attach(request)
        if not result.ok or result.facts is None:
            return self._reject(pkt, client, Reject.of(result.reason), result.reason)
        session_id = result.session_id or session_id
        # The Accept carries the speed to this session; the line's others are pushed it (aaa.speed).
        speed = self.speeds.decide(result.facts)
        if speed != result.facts.speed:  # most re-authorizations change nothing: no coroutine then
            await self.speeds.apply(ref, result.facts.speed, speed, told=session_id)
        if result.granted:
            metrics.SLICES.inc()
            metrics.SLICE_BYTES.inc(result.granted)
        profile = self.profiles[profile_name(speed, rp.tgpp_rat_type(pkt))]
        return self._accept(pkt, client, apn, ref, session_id, result, profile)

    async def _public_safety(
        self, pkt: rp.Packet, client: Client, apn: Apn, ref: LineRef, session_id: str, imsi: str | None
    ) -> bytes:
        """R-62 / R-63: a public-safety line (aaa.publicsafety) on its APN."""
        assert self.publicsafety is not None
        decision = await self.publicsafety.authorize(pkt, ref, imsi, session_id)
        if decision.reason is not None:
            return self._reject(pkt, client, Reject.of(decision.reason), decision.reason)
        self._accepts.inc()
        attrs = apn.timers + rp.attr(rp.CLASS, classattr.encode(ref.contract_id, ref.msisdn, session_id))
        return rp.encode_response(rp.ACCESS_ACCEPT, pkt.identifier, pkt.authenticator, client.secret,
                                  attrs + decision.attributes, pkt.get_all(rp.PROXY_STATE))

    def _accept(
        self, pkt: rp.Packet, client: Client, apn: Apn, ref: LineRef, session_id: str,
        result: AttachResult, profile: EncodedProfile,
    ) -> bytes:
        assert result.facts is not None
        attrs = [
            apn.timers,
            rp.attr(rp.CLASS, classattr.encode(ref.contract_id, ref.msisdn, session_id)),
            profile.attributes,
            granted_attr(result.facts.held),
        ]
        if result.framed_ip:
            attrs.append(rp.attr(rp.FRAMED_IP_ADDRESS, ipv4_bytes(result.framed_ip)))
        self._accepts.inc()
        return rp.encode_response(
            rp.ACCESS_ACCEPT, pkt.identifier, pkt.authenticator, client.secret, b"".join(attrs),
            pkt.get_all(rp.PROXY_STATE),
        )

    def _reject(self, pkt: rp.Packet, client: Client, reason: Reject, said: str | None = None) -> bytes:
        """Reject for ``reason``; ``said`` is what a store answered, logged when it is no known reason."""
        self._rejects.inc()
        self._reject_counters[reason].inc()
        if reason is Reject.UNKNOWN and said:
            _log.info("access_reject", reason=reason, detail=said, client=client.name)
        else:
            _log.info("access_reject", reason=reason, client=client.name)
        return rp.encode_response(
            rp.ACCESS_REJECT, pkt.identifier, pkt.authenticator, client.secret,
            rp.attr(rp.REPLY_MESSAGE, reason.text.encode()), pkt.get_all(rp.PROXY_STATE),
        )


