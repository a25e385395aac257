"""The simulated gateway's packets, sans-I/O: handset → request bytes, reply bytes → Grant, and
CoA/Disconnect-Request bytes → what to apply and the ACK/NAK to send (RFC 2865, 2866, 2869,
3579, 5176). Built on quotad's codec (quotad/radius/packet.py); no sockets here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, replace

from quotad.radius import packet as rp
from simulators.handset import Grant, Handset

APN = b"iijmio.jp"  # the handsets' default APN and credentials (Handset.apn, .user, .password)
USER = b"mio@iij"
PASSWORD = b"iij"
HOME_NETWORK = b"44010"
UNMETERED_PROFILES = frozenset({"low", "restricted"})
RAT_TYPES = {"lte": 6, "3g": 1}  # 3GPP-RAT-Type EUTRAN, UTRAN (TS 29.061)

SERVICE_FRAMED = 2
SERVICE_AUTHORIZE_ONLY = 17
NAS_PORT_WIRELESS_OTHER = 18
ACCT_START, ACCT_STOP, ACCT_INTERIM = 1, 2, 3

# RFC 5176 §3.6 Error-Cause values.
ERROR_SESSION_NOT_FOUND = 503
ERROR_UNSUPPORTED_SERVICE = 405

# quotad's vendor attributes (quotad/radius/dictionaries/dictionary.quotad).
Q_GRANTED_OCTETS, Q_GRANTED_GIGAWORDS, Q_SPEED_PROFILE, Q_RATE_DOWN, Q_RATE_UP = 1, 2, 3, 4, 5
Q_EXEMPT_IN, Q_EXEMPT_OUT, Q_EXEMPT_RULE, Q_EXEMPT_IN_GIGAWORDS, Q_EXEMPT_OUT_GIGAWORDS = 6, 7, 8, 9, 10

_GIGA = 1 << 32


@dataclass(frozen=True, slots=True)
class Nas:
    """The gateway as quotad sees it: its address and shared secret."""

    ip: str = "127.0.0.1"
    secret: bytes = b"testing123"
    identifier: str = "quotad-sim"

    @property
    def ip_octets(self) -> bytes:
        return ipaddress.IPv4Address(self.ip).packed


def _identity(h: Handset, nas: Nas) -> list[bytes]:
    return [
        rp.attr(rp.CALLED_STATION_ID, h.apn),
        rp.attr(rp.CALLING_STATION_ID, h.msisdn.encode()),
        rp.attr(rp.NAS_IP_ADDRESS, nas.ip_octets),
        rp.attr(rp.NAS_IDENTIFIER, nas.identifier.encode()),
        rp.attr_int(rp.NAS_PORT_TYPE, NAS_PORT_WIRELESS_OTHER),
        rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI, h.imsi.encode()),
        rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_IMEISV, h.imeisv.encode()),
        rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_RAT_TYPE, bytes([RAT_TYPES[h.rat]])),
        rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC, HOME_NETWORK),
        rp.attr(rp.ACCT_SESSION_ID, h.session_id.encode()),
    ]


def access_request(h: Handset, nas: Nas, identifier: int, reauth: bool = False) -> tuple[bytes, bytes]:
    """Access-Request (PAP or CHAP, Message-Authenticator first); Authorize-Only when ``reauth``."""
    authenticator = os.urandom(16)
    attrs = [rp.attr(rp.USER_NAME, h.user)]
    if h.auth == "chap":
        challenge = os.urandom(16)
        ident = bytes([identifier])
        attrs.append(rp.attr(rp.CHAP_PASSWORD, ident + hashlib.md5(ident + h.password + challenge).digest()))
        attrs.append(rp.attr(rp.CHAP_CHALLENGE, challenge))
    else:
        attrs.append(rp.pap_attr(h.password, nas.secret, authenticator))
    service = SERVICE_AUTHORIZE_ONLY if reauth else SERVICE_FRAMED
    attrs += [rp.attr_int(rp.SERVICE_TYPE, service), rp.attr_int(rp.FRAMED_PROTOCOL, 7), *_identity(h, nas)]
    if reauth and h.grant is not None and h.grant.klass:
        attrs.append(rp.attr(rp.CLASS, h.grant.klass))
    return rp.encode_request(rp.ACCESS_REQUEST, identifier, nas.secret, b"".join(attrs), authenticator=authenticator)


def counters(octets: int) -> tuple[int, int]:
    """(octets mod 2^32, gigawords) of a 64-bit count (RFC 2869 §5.1)."""
    return octets % _GIGA, octets // _GIGA


def accounting_request(
    h: Handset, nas: Nas, identifier: int, status: int, now: float
) -> tuple[bytes, bytes]:
    """Accounting-Request with the session's cumulative counters (with Gigawords) and its Class."""
    in_low, in_giga = counters(h.octets_in)
    out_low, out_giga = counters(h.octets_out)
    attrs = [
        rp.attr_int(rp.ACCT_STATUS_TYPE, status),
        *_identity(h, nas),
        rp.attr_int(rp.ACCT_INPUT_OCTETS, in_low),
        rp.attr_int(rp.ACCT_OUTPUT_OCTETS, out_low),
        rp.attr_int(rp.ACCT_INPUT_GIGAWORDS, in_giga),
        rp.attr_int(rp.ACCT_OUTPUT_GIGAWORDS, out_giga),
        rp.attr_int(rp.ACCT_SESSION_TIME, max(0, int(now - h.started_at))),
        rp.attr_int(rp.EVENT_TIMESTAMP, int(now)),
        rp.attr_int(rp.ACCT_DELAY_TIME, 0),
    ]
    grant = h.grant
    if grant is not None and grant.klass:
        attrs.append(rp.attr(rp.CLASS, grant.klass))
    if grant is not None and grant.framed_ip:
        attrs.append(rp.attr(rp.FRAMED_IP_ADDRESS, ipaddress.IPv4Address(grant.framed_ip).packed))
    if h.exempt_in or h.exempt_out:
        attrs += _exempt_attrs(h.exempt_in, h.exempt_out)
    if status == ACCT_STOP:
        attrs.append(rp.attr_int(rp.ACCT_TERMINATE_CAUSE, h.terminate_cause))
    body = b"".join(attrs)
    return rp.encode_request(rp.ACCOUNTING_REQUEST, identifier, nas.secret, body, message_authenticator=False)


def _exempt_attrs(exempt_in: int, exempt_out: int) -> list[bytes]:
    """The zero-rated part of the counters (R-23), with its Gigawords (docs/gateway-integration.md §4)."""
    in_low, in_giga = counters(exempt_in)
    out_low, out_giga = counters(exempt_out)
    subs = ((Q_EXEMPT_IN, in_low), (Q_EXEMPT_OUT, out_low), (Q_EXEMPT_IN_GIGAWORDS, in_giga),
            (Q_EXEMPT_OUT_GIGAWORDS, out_giga))
    return [rp.attr_vsa(rp.VENDOR_QUOTAD, sub, value.to_bytes(4, "big")) for sub, value in subs]


def verify_reply(reply: rp.Packet, request_authenticator: bytes, secret: bytes) -> str | None:
    """Why a reply cannot be trusted ("bad_authenticator", "bad_message_authenticator"), or None."""
    if not rp.verify_response_authenticator(reply, request_authenticator, secret):
        return "bad_authenticator"
    ma = rp.verify_message_authenticator(reply, secret, request_authenticator)
    if ma is False or (ma is None and reply.code in (rp.ACCESS_ACCEPT, rp.ACCESS_REJECT)):
        return "bad_message_authenticator"  # quotad signs every Access reply (BlastRADIUS)
    return None


def _vsa_int(pkt: rp.Packet, subtype: int) -> int | None:
    value = pkt.vsa(rp.VENDOR_QUOTAD, subtype)
    return None if value is None else int.from_bytes(value, "big")


def grant_of(pkt: rp.Packet, previous: Grant | None = None, unmetered: frozenset[str] = UNMETERED_PROFILES) -> Grant:
    """What an Access-Accept or CoA-Request says; attributes it lacks keep their previous value.

    A session whose Access-Accept carries no Quotad-Granted-Octets is not sliced (a public-safety
    line, R-63: no slices): it is metered on no profile."""
    base = previous or Grant(profile="", down_bps=0, up_bps=0, granted=0, metered=True)
    raw_profile = pkt.vsa(rp.VENDOR_QUOTAD, Q_SPEED_PROFILE) or pkt.get(rp.FILTER_ID)
    profile = raw_profile.decode() if raw_profile is not None else base.profile
    granted = _vsa_int(pkt, Q_GRANTED_OCTETS)
    if granted is None and (giga := _vsa_int(pkt, Q_GRANTED_GIGAWORDS)) is not None:
        granted = giga * _GIGA
    framed = pkt.get(rp.FRAMED_IP_ADDRESS)
    rule = pkt.vsa(rp.VENDOR_QUOTAD, Q_EXEMPT_RULE)
    profile_changed = raw_profile is not None
    sliced = granted is not None or (previous is not None and previous.sliced)
    return replace(
        base,
        profile=profile,
        down_bps=_vsa_int(pkt, Q_RATE_DOWN) or base.down_bps,
        up_bps=_vsa_int(pkt, Q_RATE_UP) or base.up_bps,
        granted=base.granted if granted is None else granted,
        metered=sliced and profile not in unmetered,
        sliced=sliced,
        klass=pkt.get(rp.CLASS) or base.klass,
        framed_ip=str(ipaddress.IPv4Address(framed)) if framed and len(framed) == 4 else base.framed_ip,
        interim_interval=pkt.get_int(rp.ACCT_INTERIM_INTERVAL) or base.interim_interval,
        session_timeout=pkt.get_int(rp.SESSION_TIMEOUT) or base.session_timeout,
        # the rule comes with the profile: a new profile without one has none
        exempt_rule=rule.decode() if rule else (None if profile_changed else base.exempt_rule),
    )


@dataclass(frozen=True, slots=True)
class DynAuthRequest:
    """A verified CoA-Request or Disconnect-Request, and the session it names."""

    packet: rp.Packet
    session_id: str | None
    msisdn: str | None

    @property
    def is_coa(self) -> bool:
        return self.packet.code == rp.COA_REQUEST


def parse_dynauth(datagram: bytes, secret: bytes) -> DynAuthRequest | None:
    """A CoA/Disconnect-Request whose Request Authenticator and Message-Authenticator verify; None
    for anything else (RFC 5176 §3.5: silently discarded)."""
    try:
        pkt = rp.decode(datagram)
    except rp.PacketError:
        return None
    if pkt.code not in (rp.COA_REQUEST, rp.DISCONNECT_REQUEST):
        return None
    if not rp.verify_request_authenticator(pkt, secret):
        return None
    if rp.verify_message_authenticator(pkt, secret) is False:
        return None
    return DynAuthRequest(pkt, pkt.get_str(rp.ACCT_SESSION_ID), pkt.get_str(rp.CALLING_STATION_ID))


def dynauth_reply(request: DynAuthRequest, ok: bool, secret: bytes, error_cause: int | None = None) -> bytes:
    """ACK or NAK (with Error-Cause) for a CoA/Disconnect-Request, Message-Authenticator first."""
    pkt = request.packet
    ack, nak = (rp.COA_ACK, rp.COA_NAK) if request.is_coa else (rp.DISCONNECT_ACK, rp.DISCONNECT_NAK)
    code = ack if ok else nak
    attrs = b"" if ok or error_cause is None else rp.attr_int(rp.ERROR_CAUSE, error_cause)
    return rp.encode_response(code, pkt.identifier, pkt.authenticator, secret, attrs, pkt.get_all(rp.PROXY_STATE))
