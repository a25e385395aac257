"""Sans-I/O RADIUS codec for the hot path (RFC 2865, 2866, 2869, 3579, 5176); import ``packet``.

Plain struct + hashlib/hmac; no per-attribute objects beyond (type, value) tuples.
``decode`` never raises anything but :class:`PacketError`, so the server can drop and count.
This file is plain Python and is also compiled by Cython at install time with the C types of
``_packet.pxd`` (setup.py); ``packet`` chooses which runs. Keep it valid for both: no
``import cython``, annotations for mypy only (Cython ignores them), and a name's Python
behaviour unchanged by its declaration there.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Sequence
from typing import Any

from quotad.radius.attrtypes import (
    MESSAGE_AUTHENTICATOR,
    PROXY_STATE,
    TGPP_RAT_TYPE,
    USER_PASSWORD,
    VENDOR_3GPP,
    VENDOR_SPECIFIC,
)
from quotad.radius.codes import Code

try:
    # CPython's own MD5: no OpenSSL EVP context set up and torn down for every digest, which is
    # most of an MD5's cost on RADIUS's short messages (docs/benchmarks.md, "Compiled codec").
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - a Python built without it
    _md5 = hashlib.md5

# Packet codes as plain ints for the hot path; their names are radius.codes.Code.
ACCESS_REQUEST = int(Code.ACCESS_REQUEST)
ACCESS_ACCEPT = int(Code.ACCESS_ACCEPT)
ACCESS_REJECT = int(Code.ACCESS_REJECT)
ACCOUNTING_REQUEST = int(Code.ACCOUNTING_REQUEST)
ACCOUNTING_RESPONSE = int(Code.ACCOUNTING_RESPONSE)
ACCESS_CHALLENGE = int(Code.ACCESS_CHALLENGE)
STATUS_SERVER = int(Code.STATUS_SERVER)
DISCONNECT_REQUEST = int(Code.DISCONNECT_REQUEST)
DISCONNECT_ACK = int(Code.DISCONNECT_ACK)
DISCONNECT_NAK = int(Code.DISCONNECT_NAK)
COA_REQUEST = int(Code.COA_REQUEST)
COA_ACK = int(Code.COA_ACK)
COA_NAK = int(Code.COA_NAK)

MAX_PACKET = 4096
MAX_VALUE = 253  # one-octet length field, minus type and length
MAX_VSA_VALUE = MAX_VALUE - 6  # vendor-id(4) + sub-type(1) + sub-length(1)

_ZERO16 = bytes(16)
_MA_ZERO_ATTR = bytes((MESSAGE_AUTHENTICATOR, 18)) + _ZERO16
_HDR = struct.Struct("!BBH")
_INT_ATTR = struct.Struct("!BBI")
_VSA_HDR = struct.Struct("!BBIBB")
# Requests whose Request Authenticator is an MD5 over the packet; their Message-Authenticator
# is computed with a zeroed authenticator field (RFC 5176 §3.3; FreeRADIUS and pyrad agree).
_SIGNED_REQUESTS = frozenset((ACCOUNTING_REQUEST, COA_REQUEST, DISCONNECT_REQUEST))


_MA_ABSENT, _MA_BAD, _MA_UNKNOWN = -1, -2, -3


class PacketError(Exception):
    """A datagram that RFC 2865 §3 says to discard silently; ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Packet:
    """A decoded datagram: header fields and every attribute in wire order, values raw."""

    __slots__ = ("_first", "_ma", "attrs", "authenticator", "code", "identifier", "raw")

    def __init__(self, code: int, identifier: int, authenticator: bytes, attrs: list[tuple[int, bytes]],
                 raw: bytes) -> None:
        self.code = code
        self.identifier = identifier
        self.authenticator = authenticator
        self.attrs = attrs
        self.raw = raw
        # First value of each attribute type, built on the first lookup (handlers look up several).
        self._first: dict[int, bytes] | None = None
        # Offset of the Message-Authenticator attribute, found by decode: _MA_ABSENT, _MA_BAD
        # (present twice or not 16 octets), or _MA_UNKNOWN for a Packet not made by decode.
        self._ma = _MA_UNKNOWN

    def __repr__(self) -> str:
        return (f"Packet(code={self.code!r}, identifier={self.identifier!r}, "
                f"authenticator={self.authenticator!r}, attrs={self.attrs!r}, raw={self.raw!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return (self.code, self.identifier, self.authenticator, self.attrs, self.raw) == (
            other.code, other.identifier, other.authenticator, other.attrs, other.raw)

    # Mutable, so not hashable (as the dataclass it was).
    __hash__ = None  # type: ignore[assignment]

    def _index(self) -> dict[int, bytes]:
        first = self._first
        if first is None:
            first = self._first = {}
            for t, v in self.attrs:
                if t not in first:  # earlier values win
                    first[t] = v
        return first

    def get(self, type_: int) -> bytes | None:
        """The first value of attribute ``type_``, or None."""
        return self._index().get(type_)

    def get_all(self, type_: int) -> list[bytes]:
        """Every value of attribute ``type_``, in wire order."""
        if type_ not in self._index():
            return []
        return [v for t, v in self.attrs if t == type_]

    def get_int(self, type_: int) -> int | None:
        """The first value as a 4-octet unsigned integer; None if absent or not 4 octets."""
        v = self._index().get(type_)
        if v is None or len(v) != 4:
            return None
        high = v[0]  # compiled: an unsigned long (_packet.pxd), so this is C arithmetic
        return high << 24 | v[1] << 16 | v[2] << 8 | v[3]

    def get_str(self, type_: int) -> str | None:
        """The first value as UTF-8 text (undecodable octets replaced)."""
        v = self.get(type_)
        return None if v is None else v.decode("utf-8", "replace")

    def vsa(self, vendor: int, subtype: int) -> bytes | None:
        """The first sub-attribute ``subtype`` of ``vendor`` (RFC 2865 §5.26 layout).

        A Vendor-Specific whose inner layout is malformed is passed over as a whole.
        """
        if VENDOR_SPECIFIC not in self._index():
            return None
        prefix = vendor.to_bytes(4, "big")
        for t, v in self.attrs:
            if t == VENDOR_SPECIFIC and v[:4] == prefix:
                subs = split_vsa(v)
                if subs is None:
                    continue
                for st, sv in subs:
                    if st == subtype:
                        return sv
        return None


def split_vsa(value: bytes) -> list[tuple[int, bytes]] | None:
    """Sub-attributes of one Vendor-Specific value, or None if its layout is malformed."""
    n = len(value)
    if n < 4:
        return None
    out: list[tuple[int, bytes]] = []
    pos = 4
    while pos < n:
        if pos + 2 > n:
            return None
        slen = value[pos + 1]
        if slen < 2 or pos + slen > n:
            return None
        out.append((value[pos], value[pos + 2 : pos + slen]))
        pos += slen
    return out


def decode(data: bytes | bytearray | memoryview) -> Packet:
    """Parse one datagram. Raises only PacketError (reason "short", "length" or "attribute")."""
    n = len(data)
    if n < 20:
        raise PacketError("short")
    length = (data[2] << 8) | data[3]
    if length < 20 or length > MAX_PACKET or length > n:
        raise PacketError("length")
    # Octets past the Length field are padding (RFC 2865 §3).
    raw = bytes(data[:length]) if n != length else bytes(data)
    # ``buf`` is ``raw``; compiled, it is a C pointer into it (_packet.pxd), so the indexing and
    # slicing below are C reads and PyBytes_FromStringAndSize, not Python subscripts.
    buf = raw
    attrs: list[tuple[int, bytes]] = []
    append = attrs.append
    ma = _MA_ABSENT
    pos = 20
    while pos < length:
        if pos + 2 > length:
            raise PacketError("attribute")
        alen = buf[pos + 1]
        end = pos + alen
        if alen < 2 or end > length:
            raise PacketError("attribute")
        if buf[pos] == MESSAGE_AUTHENTICATOR:
            ma = pos if ma == _MA_ABSENT and alen == 18 else _MA_BAD
        append((buf[pos], buf[pos + 2 : end]))
        pos = end
    packet = Packet(buf[0], buf[1], buf[4:20], attrs, raw)
    packet._ma = ma
    return packet


def tgpp_rat_type(packet: Packet) -> int | None:
    """3GPP-RAT-Type: one octet per TS 29.061; four octets accepted from older gateways."""
    v = packet.vsa(VENDOR_3GPP, TGPP_RAT_TYPE)
    if v is None or len(v) not in (1, 4):
        return None
    return int.from_bytes(v, "big")


def octets64(octets: int | None, gigawords: int | None) -> int:
    """Combine Acct-*-Octets with Acct-*-Gigawords (RFC 2869 §5.1, 5.2)."""
    return (gigawords or 0) << 32 | (octets or 0)


# --- authenticators -------------------------------------------------------------------------


# HMAC-MD5 key pads, hashed once per secret (gateways are few): HMAC costs two hash-state copies
# instead of preparing the key on every packet. Cleared if something floods it with keys.
_PADS: dict[bytes, tuple[Any, Any]] = {}
_PADS_LIMIT = 1024
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _pads(key: bytes) -> tuple[Any, Any]:
    block = (_md5(key).digest() if len(key) > 64 else key).ljust(64, b"\x00")
    pads = (_md5(block.translate(_IPAD)), _md5(block.translate(_OPAD)))
    if len(_PADS) >= _PADS_LIMIT:
        _PADS.clear()
    _PADS[key] = pads
    return pads


def hmac_md5(key: bytes, msg: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104), as ``hmac.digest(key, msg, "md5")``."""
    pads = _PADS.get(key) or _pads(key)
    inner = pads[0].copy()
    inner.update(msg)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def _ma_vector(packet: Packet, request_authenticator: bytes | None, request_code: int | None) -> bytes:
    code = packet.code
    if code in _SIGNED_REQUESTS:
        return _ZERO16
    if code == ACCOUNTING_RESPONSE and request_code != STATUS_SERVER:
        # FreeRADIUS and pyrad sign Accounting-Response with a zeroed vector, except for
        # replies to Status-Server (RFC 5997 §3); follow them for interoperability.
        return _ZERO16
    return request_authenticator if request_authenticator is not None else packet.authenticator


def verify_message_authenticator(
    packet: Packet,
    secret: bytes,
    request_authenticator: bytes | None = None,
    *,
    request_code: int | None = None,
) -> bool | None:
    """Check Message-Authenticator (RFC 3579 §3.2, RFC 5176 §3.3).

    None if absent; False if wrong, not 16 octets or present more than once; True if valid.
    For a response pass the Request Authenticator of the request (and ``request_code`` if it
    was Status-Server).
    """
    offset = packet._ma
    if offset == _MA_UNKNOWN:
        offset = _MA_ABSENT
        pos = 20
        for t, v in packet.attrs:
            if t == MESSAGE_AUTHENTICATOR:
                offset = pos if offset == _MA_ABSENT and len(v) == 16 else _MA_BAD
            pos += 2 + len(v)
    if offset == _MA_BAD:
        return False
    if offset == _MA_ABSENT:
        return None
    raw = packet.raw
    vector = _ma_vector(packet, request_authenticator, request_code)
    msg = b"".join((raw[:4], vector, raw[20 : offset + 2], _ZERO16, raw[offset + 18 :]))
    return hmac.compare_digest(hmac_md5(secret, msg), raw[offset + 2 : offset + 18])


def verify_request_authenticator(packet: Packet, secret: bytes) -> bool:
    """Accounting/CoA/Disconnect-Request authenticator (RFC 2866 §3, RFC 5176 §3.5)."""
    raw = packet.raw
    digest = _md5(b"".join((raw[:4], _ZERO16, raw[20:], secret))).digest()
    return hmac.compare_digest(digest, packet.authenticator)


def verify_response_authenticator(packet: Packet, request_authenticator: bytes, secret: bytes) -> bool:
    """Response Authenticator = MD5(code+id+length+RequestAuth+attributes+secret) (RFC 2865 §3)."""
    raw = packet.raw
    digest = _md5(b"".join((raw[:4], request_authenticator, raw[20:], secret))).digest()
    return hmac.compare_digest(digest, packet.authenticator)


def _xor16(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


def decrypt_password(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Reveal a User-Password (RFC 2865 §5.2); trailing NULs stripped."""
    n = len(hidden)
    if n == 0 or n % 16 or n > 128:
        raise PacketError("attribute")
    out = []
    last = authenticator
    for i in range(0, n, 16):
        block = hidden[i : i + 16]
        out.append(_xor16(block, _md5(secret + last).digest()))
        last = block
    return b"".join(out).rstrip(b"\x00")


def encrypt_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Hide a User-Password (RFC 2865 §5.2); ValueError over 128 octets."""
    if len(password) > 128:
        raise ValueError("User-Password longer than 128 octets")
    padded = password + bytes(-len(password) % 16 if password else 16)
    out = []
    last = authenticator
    for i in range(0, len(padded), 16):
        last = _xor16(padded[i : i + 16], _md5(secret + last).digest())
        out.append(last)
    return b"".join(out)


def check_chap(chap_password: bytes, challenge: bytes, password: bytes) -> bool:
    """CHAP-Password = ident + MD5(ident + password + challenge) (RFC 2865 §2.2, RFC 1994).

    ``challenge`` is CHAP-Challenge, or the Request Authenticator when that is absent.
    """
    if len(chap_password) != 17 or not challenge:
        return False
    digest = _md5(chap_password[:1] + password + challenge).digest()
    return hmac.compare_digest(digest, chap_password[1:])


# --- encoding -------------------------------------------------------------------------------


def attr(type_: int, value: bytes) -> bytes:
    """One wire attribute; ValueError if the value exceeds 253 octets."""
    if len(value) > MAX_VALUE:
        raise ValueError(f"attribute {type_}: value of {len(value)} octets exceeds {MAX_VALUE}")
    return bytes((type_, len(value) + 2)) + value


def attr_int(type_: int, value: int) -> bytes:
    """One attribute holding a 4-octet big-endian unsigned integer."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"attribute {type_}: {value} does not fit in 32 bits")
    return _INT_ATTR.pack(type_, 6, value)


def attr_vsa(vendor: int, subtype: int, value: bytes) -> bytes:
    """A complete Vendor-Specific attribute holding one sub-attribute (RFC 2865 §5.26)."""
    if len(value) > MAX_VSA_VALUE:
        raise ValueError(f"VSA {vendor}/{subtype}: value of {len(value)} octets exceeds {MAX_VSA_VALUE}")
    return _VSA_HDR.pack(VENDOR_SPECIFIC, len(value) + 8, vendor, subtype, len(value) + 2) + value


def pap_attr(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """A User-Password attribute hiding ``password``."""
    return attr(USER_PASSWORD, encrypt_password(password, secret, authenticator))


def _header(code: int, identifier: int, length: int) -> bytes:
    if length > MAX_PACKET:
        raise ValueError(f"packet of {length} octets exceeds {MAX_PACKET}")
    return _HDR.pack(code, identifier, length)


def encode_response(
    code: int,
    identifier: int,
    request_authenticator: bytes,
    secret: bytes,
    attrs: bytes = b"",
    proxy_states: Sequence[bytes] = (),
    *,
    request_code: int | None = None,
    message_authenticator: bool = True,
) -> bytes:
    """A signed reply: Message-Authenticator first (BlastRADIUS), ``attrs``, then Proxy-State.

    ``message_authenticator=False`` leaves it out: quotad does so for Accounting-Response, where
    RFC 2866 has none and implementations disagree on the vector it would be computed with.

    ``attrs`` is already-encoded attribute bytes. Proxy-State values are copied in order
    (RFC 2865 §5.33). Pass ``request_code=STATUS_SERVER`` when answering Status-Server with
    an Accounting-Response (RFC 5997 §3).
    """
    if proxy_states:
        attrs = attrs + b"".join([attr(PROXY_STATE, ps) for ps in proxy_states])
    if not message_authenticator:
        hdr = _header(code, identifier, 20 + len(attrs))
        auth = _md5(b"".join((hdr, request_authenticator, attrs, secret))).digest()
        return b"".join((hdr, auth, attrs))
    hdr = _header(code, identifier, 38 + len(attrs))
    zero_vector = code == ACCOUNTING_RESPONSE and request_code != STATUS_SERVER
    vector = _ZERO16 if zero_vector else request_authenticator
    ma = hmac_md5(secret, b"".join((hdr, vector, _MA_ZERO_ATTR, attrs)))
    body = b"\x50\x12" + ma + attrs
    auth = _md5(b"".join((hdr, request_authenticator, body, secret))).digest()
    return b"".join((hdr, auth, body))


def encode_request(
    code: int,
    identifier: int,
    secret: bytes,
    attrs: bytes = b"",
    authenticator: bytes | None = None,
    message_authenticator: bool = True,
) -> tuple[bytes, bytes]:
    """A request datagram and its Request Authenticator.

    Access-Request (and Status-Server): random authenticator unless given. Accounting, CoA and
    Disconnect-Request: the authenticator is MD5 over the packet (RFC 2866 §3, RFC 5176 §3.5)
    and ``authenticator`` is ignored. Message-Authenticator goes first when requested.
    """
    length = 20 + len(attrs) + (18 if message_authenticator else 0)
    hdr = _header(code, identifier, length)
    if code in _SIGNED_REQUESTS:
        if message_authenticator:
            ma = hmac_md5(secret, b"".join((hdr, _ZERO16, _MA_ZERO_ATTR, attrs)))
            attrs = b"\x50\x12" + ma + attrs
        auth = _md5(b"".join((hdr, _ZERO16, attrs, secret))).digest()
        return hdr + auth + attrs, auth
    auth = authenticator if authenticator is not None else os.urandom(16)
    if len(auth) != 16:
        raise ValueError("authenticator must be 16 octets")
    if message_authenticator:
        ma = hmac_md5(secret, b"".join((hdr, auth, _MA_ZERO_ATTR, attrs)))
        attrs = b"\x50\x12" + ma + attrs
    return hdr + auth + attrs, auth
