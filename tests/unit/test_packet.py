"""The sans-I/O RADIUS codec: RFC conformance (R-70) and bad input (R-72).

pyrad is the independent peer: it encodes, we decode and verify, and back. Every test runs twice:
against the compiled codec (Cython's build of quotad/radius/_packet.py) and against the same
source as plain Python, the fallback where no C compiler is (docs/benchmarks.md, "Compiled codec").
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import struct
from collections.abc import Iterator
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrad import packet as pp
from pyrad.dictionary import Dictionary as PyradDictionary

from quotad.radius import attrtypes as at
from quotad.radius import packet as codec
from quotad.radius import packet as rp
from quotad.radius.dictionary import default_dictionary_path
from quotad.radius.packet import PacketError, decode
from tests.conftest import implementation_of

SECRET = b"s3cr3t-testing"
LONG_PW = b"correct horse battery staple, longer than 16"

# RFC 2865 §7.1: Access-Request and Access-Accept, secret "xyzzy5461".
RFC_SECRET = b"xyzzy5461"
RFC_REQUEST = bytes.fromhex(
    "01000038 0f403f9473978057bd83d5cb98f4227a"
    " 01066e656d6f 02120dbe708d93d413ce3196e43f782a0aee 0406c0a80110 050600000003"
)
RFC_ACCEPT = bytes.fromhex(
    "02000026 86fe220e7624ba2a1005f6bf9b55e0b2 060600000001 0f0600000000 0e06c0a80103"
)


@pytest.fixture(scope="module", autouse=True, params=["compiled", "python"])
def implementation(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The codec under test: this module's ``rp``, ``decode`` and ``PacketError`` are its own.

    Without a build the compiled run is skipped; CI sets QUOTAD_REQUIRE_COMPILED=1 to fail instead.
    """
    module = implementation_of(codec, request.param)
    names = globals()
    saved = {name: names[name] for name in ("rp", "decode", "PacketError")}
    names.update(rp=module, decode=module.decode, PacketError=module.PacketError)
    yield module
    names.update(saved)


def test_both_implementations_are_the_one_source(implementation: ModuleType) -> None:
    assert implementation.__name__ in ("quotad.radius._packet", "quotad.radius._packet_py")
    assert (implementation.__file__ or "").endswith(".py") == (implementation is codec.plain())
    assert codec.COMPILED is (codec.IMPLEMENTATION == "cython")


@pytest.fixture(scope="module")
def pyrad_dict() -> PyradDictionary:
    # pyrad 2.6 parses our FreeRADIUS files as they are (BEGIN-VENDOR, integer64, ipv6prefix).
    return PyradDictionary(str(default_dictionary_path()))


def _auth_packet(pyrad_dict: PyradDictionary, **kw: object) -> pp.AuthPacket:
    return pp.AuthPacket(code=pp.AccessRequest, id=7, secret=SECRET, dict=pyrad_dict, **kw)


# --- known answers (R-70) -------------------------------------------------------------------


def test_r70_rfc2865_example_pap_hidden_password() -> None:
    """R-70: RFC 2865 §7.1 — "arctangent" hides to the octets printed in the RFC."""
    auth = bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
    hidden = rp.encrypt_password(b"arctangent", RFC_SECRET, auth)
    assert hidden.hex() == "0dbe708d93d413ce3196e43f782a0aee"
    assert rp.decrypt_password(hidden, RFC_SECRET, auth) == b"arctangent"


def test_r70_rfc2865_example_request_decodes() -> None:
    p = decode(RFC_REQUEST)
    assert (p.code, p.identifier) == (rp.ACCESS_REQUEST, 0)
    assert p.get_str(at.USER_NAME) == "nemo"
    assert p.get(at.NAS_IP_ADDRESS) == bytes([192, 168, 1, 16])
    assert p.get_int(5) == 3
    hidden = p.get(at.USER_PASSWORD)
    assert hidden is not None
    assert rp.decrypt_password(hidden, RFC_SECRET, p.authenticator) == b"arctangent"
    assert rp.verify_message_authenticator(p, RFC_SECRET) is None


def test_r70_rfc2865_example_accept_response_authenticator() -> None:
    """R-70: the Access-Accept of RFC 2865 §7.1 verifies against the request's authenticator."""
    req = decode(RFC_REQUEST)
    acc = decode(RFC_ACCEPT)
    assert rp.verify_response_authenticator(acc, req.authenticator, RFC_SECRET) is True
    assert rp.verify_response_authenticator(acc, bytes(16), RFC_SECRET) is False
    assert acc.attrs == [(6, b"\0\0\0\1"), (15, b"\0\0\0\0"), (14, bytes([192, 168, 1, 3]))]


def test_r70_response_authenticator_matches_hand_computation() -> None:
    req_auth = bytes(range(16))
    out = rp.encode_response(rp.ACCESS_ACCEPT, 9, req_auth, SECRET, rp.attr_int(at.SESSION_TIMEOUT, 60))
    assert out[:4] == bytes([2, 9, 0, 20 + 18 + 6])
    assert out[20:22] == b"\x50\x12"  # Message-Authenticator first (BlastRADIUS)
    assert out[4:20] == hashlib.md5(out[:4] + req_auth + out[20:] + SECRET).digest()


# --- pyrad encodes, we decode (R-70) --------------------------------------------------------


def test_r70_pyrad_pap_request_with_vsas_and_ma(pyrad_dict: PyradDictionary) -> None:
    req = _auth_packet(pyrad_dict)
    req["User-Name"] = "alice"
    req["User-Password"] = req.PwCrypt(LONG_PW.decode())
    req["NAS-IP-Address"] = "10.1.2.3"
    req["Called-Station-Id"] = "internet.apn"
    req["3GPP-IMSI"] = "001010123456789"
    req["3GPP-RAT-Type"] = "EUTRAN"
    req["3GPP-Charging-Characteristics"] = "0800"
    req["Service-Type"] = "Framed-User"
    req.add_message_authenticator()
    raw = req.RequestPacket()

    p = decode(raw)
    assert p.raw == raw
    assert (p.code, p.identifier, p.authenticator) == (rp.ACCESS_REQUEST, 7, req.authenticator)
    assert p.attrs[0][0] == at.MESSAGE_AUTHENTICATOR
    assert p.get_str(at.USER_NAME) == "alice"
    assert p.get(at.NAS_IP_ADDRESS) == bytes([10, 1, 2, 3])
    assert p.get_str(at.CALLED_STATION_ID) == "internet.apn"
    assert p.get_int(at.SERVICE_TYPE) == 2
    assert p.vsa(at.VENDOR_3GPP, at.TGPP_IMSI) == b"001010123456789"
    assert p.vsa(at.VENDOR_3GPP, at.TGPP_CHARGING_CHARACTERISTICS) == b"0800"
    # pyrad writes the dictionary's integer as 4 octets; we accept that as well as 1.
    assert p.vsa(at.VENDOR_3GPP, at.TGPP_RAT_TYPE) == b"\0\0\0\6"
    assert rp.tgpp_rat_type(p) == 6
    hidden = p.get(at.USER_PASSWORD)
    assert hidden is not None
    assert rp.decrypt_password(hidden, SECRET, p.authenticator) == LONG_PW
    assert rp.verify_message_authenticator(p, SECRET) is True
    assert rp.verify_message_authenticator(p, b"wrong") is False


@pytest.mark.parametrize("with_challenge", [True, False])
def test_r70_chap_agrees_with_pyrad(pyrad_dict: PyradDictionary, with_challenge: bool) -> None:
    """R-70: RFC 2865 §2.2 — CHAP-Challenge, or the Request Authenticator when it is absent."""
    req = _auth_packet(pyrad_dict, authenticator=bytes(range(100, 116)))
    challenge = b"0123456789abcdef-challenge" if with_challenge else req.authenticator
    if with_challenge:
        req["CHAP-Challenge"] = challenge
    req["User-Name"] = "bob"
    req["CHAP-Password"] = b"\x2a" + hashlib.md5(b"\x2a" + b"chap-pw" + challenge).digest()
    raw = req.RequestPacket()
    assert pp.AuthPacket(packet=raw, secret=SECRET, dict=pyrad_dict).VerifyChapPasswd(b"chap-pw")

    p = decode(raw)
    chap = p.get(at.CHAP_PASSWORD)
    assert chap is not None
    our_challenge = p.get(at.CHAP_CHALLENGE) or p.authenticator
    assert rp.check_chap(chap, our_challenge, b"chap-pw") is True
    assert rp.check_chap(chap, our_challenge, b"chap-pX") is False
    assert rp.check_chap(chap[:16], our_challenge, b"chap-pw") is False


def test_r70_pyrad_accounting_gigawords_and_authenticators(pyrad_dict: PyradDictionary) -> None:
    req = pp.AcctPacket(id=3, secret=SECRET, dict=pyrad_dict)
    req["Acct-Status-Type"] = "Interim-Update"
    req["Acct-Session-Id"] = "sess-1"
    req["Acct-Input-Octets"] = 123
    req["Acct-Input-Gigawords"] = 2
    req["Acct-Output-Octets"] = 0xFFFFFFFF
    req["3GPP-IMSI"] = "001010000000001"
    req.add_message_authenticator()
    raw = req.RequestPacket()

    p = decode(raw)
    assert p.get_int(at.ACCT_STATUS_TYPE) == 3
    assert rp.octets64(p.get_int(at.ACCT_INPUT_OCTETS), p.get_int(at.ACCT_INPUT_GIGAWORDS)) == (2 << 32) + 123
    assert rp.octets64(p.get_int(at.ACCT_OUTPUT_OCTETS), p.get_int(at.ACCT_OUTPUT_GIGAWORDS)) == 0xFFFFFFFF
    assert rp.verify_request_authenticator(p, SECRET) is True
    assert rp.verify_request_authenticator(p, b"other") is False
    # RFC 5176 §3.3 / FreeRADIUS: MA over a zeroed authenticator field.
    assert rp.verify_message_authenticator(p, SECRET) is True


# --- we encode, pyrad verifies (R-70) -------------------------------------------------------


def test_r70_encode_response_accepted_by_pyrad(pyrad_dict: PyradDictionary) -> None:
    req = _auth_packet(pyrad_dict)
    req["User-Name"] = "alice"
    req["Proxy-State"] = [b"proxy-1", b"proxy-2"]
    req.add_message_authenticator()
    raw_req = req.RequestPacket()
    p = decode(raw_req)

    attrs = (
        rp.attr_int(at.SESSION_TIMEOUT, 3600)
        + rp.attr_int(at.IDLE_TIMEOUT, 600)
        + rp.attr(at.FILTER_ID, b"default")
        + rp.attr(at.CLASS, b"cls")
        + rp.attr_vsa(at.VENDOR_QUOTAD, 3, b"gold")
        + rp.attr_int(at.ACCT_INTERIM_INTERVAL, 300)
    )
    out = rp.encode_response(
        rp.ACCESS_ACCEPT, p.identifier, p.authenticator, SECRET, attrs, p.get_all(at.PROXY_STATE)
    )
    reply = pp.Packet(packet=out, secret=SECRET, dict=pyrad_dict)
    assert req.VerifyReply(reply, out, enforce_ma=True) is True
    assert reply["Session-Timeout"] == [3600]
    assert reply["Quotad-Speed-Profile"] == ["gold"]
    assert reply[33] == [b"proxy-1", b"proxy-2"]

    ours = decode(out)
    assert rp.verify_message_authenticator(ours, SECRET, p.authenticator) is True
    assert rp.verify_response_authenticator(ours, p.authenticator, SECRET) is True
    assert ours.get_all(at.PROXY_STATE) == [b"proxy-1", b"proxy-2"]
    assert [t for t, _ in ours.attrs] == [80, 27, 28, 11, 25, 26, 85, 33, 33]


def test_r70_accounting_response_accepted_by_pyrad(pyrad_dict: PyradDictionary) -> None:
    req = pp.AcctPacket(id=200, secret=SECRET, dict=pyrad_dict)
    req["Acct-Status-Type"] = "Start"
    raw_req = req.RequestPacket()
    p = decode(raw_req)
    out = rp.encode_response(rp.ACCOUNTING_RESPONSE, p.identifier, p.authenticator, SECRET)
    reply = pp.Packet(packet=out, secret=SECRET, dict=pyrad_dict)
    assert req.VerifyReply(reply, out) is True
    assert rp.verify_message_authenticator(decode(out), SECRET, p.authenticator) is True


def test_r70_accounting_response_without_message_authenticator(pyrad_dict: PyradDictionary) -> None:
    """quotad's Accounting-Responses leave Message-Authenticator out (RFC 2866 has none)."""
    req = pp.AcctPacket(id=201, secret=SECRET, dict=pyrad_dict)
    req["Acct-Status-Type"] = "Start"
    raw_req = req.RequestPacket()
    p = decode(raw_req)
    out = rp.encode_response(
        rp.ACCOUNTING_RESPONSE, p.identifier, p.authenticator, SECRET, message_authenticator=False
    )
    assert len(out) == 20
    reply = pp.Packet(packet=out, secret=SECRET, dict=pyrad_dict)
    assert req.VerifyReply(reply, out) is True
    assert rp.verify_message_authenticator(decode(out), SECRET, p.authenticator) is None


@pytest.mark.parametrize("code", [rp.COA_ACK, rp.COA_NAK, rp.DISCONNECT_ACK, rp.DISCONNECT_NAK])
def test_r70_coa_responses_accepted_by_pyrad(pyrad_dict: PyradDictionary, code: int) -> None:
    req = pp.CoAPacket(code=rp.COA_REQUEST, id=5, secret=SECRET, dict=pyrad_dict)
    req["User-Name"] = "alice"
    raw_req = req.RequestPacket()
    p = decode(raw_req)
    assert rp.verify_request_authenticator(p, SECRET) is True
    out = rp.encode_response(code, p.identifier, p.authenticator, SECRET, rp.attr_int(at.ERROR_CAUSE, 503))
    reply = pp.Packet(packet=out, secret=SECRET, dict=pyrad_dict)
    assert req.VerifyReply(reply, out) is True


@pytest.mark.parametrize("with_ma", [True, False])
def test_r70_encode_request_accounting_verified_by_pyrad(pyrad_dict: PyradDictionary, with_ma: bool) -> None:
    attrs = rp.attr_int(at.ACCT_STATUS_TYPE, 2) + rp.attr(at.ACCT_SESSION_ID, b"s-9") + rp.attr_int(
        at.ACCT_INPUT_GIGAWORDS, 1
    )
    raw, auth = rp.encode_request(rp.ACCOUNTING_REQUEST, 77, SECRET, attrs, message_authenticator=with_ma)
    theirs = pp.AcctPacket(packet=raw, secret=SECRET, dict=pyrad_dict)
    assert theirs.VerifyAcctRequest() is True
    assert theirs.authenticator == auth
    assert theirs["Acct-Session-Id"] == ["s-9"]
    if with_ma:
        assert theirs.verify_message_authenticator() is True
    assert rp.verify_message_authenticator(decode(raw), SECRET) is (True if with_ma else None)


@pytest.mark.parametrize("code", [rp.COA_REQUEST, rp.DISCONNECT_REQUEST])
def test_r70_encode_request_coa_verified_by_pyrad(pyrad_dict: PyradDictionary, code: int) -> None:
    raw, _ = rp.encode_request(code, 1, SECRET, rp.attr(at.USER_NAME, b"alice"))
    theirs = pp.CoAPacket(packet=raw, secret=SECRET, dict=pyrad_dict)
    assert theirs.VerifyCoARequest() is True
    assert theirs.verify_message_authenticator() is True


def test_r70_encode_request_access_pap_read_by_pyrad(pyrad_dict: PyradDictionary) -> None:
    auth = bytes(range(16))
    attrs = rp.attr(at.USER_NAME, b"alice") + rp.pap_attr(b"pw", SECRET, auth)
    raw, got = rp.encode_request(rp.ACCESS_REQUEST, 4, SECRET, attrs, authenticator=auth)
    assert got == auth
    theirs = pp.AuthPacket(packet=raw, secret=SECRET, dict=pyrad_dict)
    assert theirs.PwDecrypt(theirs[2][0]) == "pw"
    assert theirs.verify_message_authenticator() is True
    # random authenticator when none is given
    raw2, auth2 = rp.encode_request(rp.ACCESS_REQUEST, 4, SECRET, attrs)
    assert raw2[4:20] == auth2 and auth2 != auth


# --- password hiding edge cases -------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 128])
def test_r70_password_round_trip(length: int) -> None:
    pw = bytes((65 + i % 26) for i in range(length))
    hidden = rp.encrypt_password(pw, SECRET, bytes(16))
    assert len(hidden) == max(16, -(-length // 16) * 16)
    assert rp.decrypt_password(hidden, SECRET, bytes(16)) == pw


@pytest.mark.parametrize("length", [0, 15, 17, 144])
def test_r72_decrypt_password_bad_length(length: int) -> None:
    with pytest.raises(PacketError) as exc:
        rp.decrypt_password(bytes(length), SECRET, bytes(16))
    assert exc.value.reason == "attribute"


def test_encode_value_limits() -> None:
    assert rp.attr(1, bytes(253))[:2] == b"\x01\xff"
    with pytest.raises(ValueError):
        rp.attr(1, bytes(254))
    with pytest.raises(ValueError):
        rp.attr_vsa(at.VENDOR_3GPP, 1, bytes(248))
    with pytest.raises(ValueError):
        rp.attr_int(27, 1 << 32)
    with pytest.raises(ValueError):
        rp.encrypt_password(bytes(129), SECRET, bytes(16))
    assert rp.attr_vsa(at.VENDOR_3GPP, 21, b"\x06") == bytes.fromhex("1a09000028af150306")


# --- bad input: each PacketError reason (R-72) ----------------------------------------------


def _with_attrs(body: bytes, length: int | None = None, code: int = 1) -> bytes:
    n = 20 + len(body) if length is None else length
    return struct.pack("!BBH", code, 1, n) + bytes(16) + body


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (bytes(19), "short"),
        (_with_attrs(b"", length=19), "length"),
        (_with_attrs(b"", length=21), "length"),  # length field > datagram
        (_with_attrs(b"\x01\x03a", length=4097) + bytes(4100), "length"),  # > 4096
        (_with_attrs(b"\x01\x00abc"), "attribute"),  # attribute length 0
        (_with_attrs(b"\x01\x01abc"), "attribute"),  # attribute length 1
        (_with_attrs(b"\x01\x09abc"), "attribute"),  # runs past the end
        (_with_attrs(b"\x01\x05abc\x01"), "attribute"),  # lone type octet at the end
    ],
    ids=["empty", "19-octets", "length-19", "length>datagram", "length>4096", "attr-len-0", "attr-len-1",
         "past-end", "half-header"],
)
def test_r72_packet_error_reasons(data: bytes, reason: str) -> None:
    """R-72: RFC 2865 §3 — such datagrams are silently discarded; the reason is counted."""
    with pytest.raises(PacketError) as exc:
        decode(data)
    assert exc.value.reason == reason


def test_r72_trailing_octets_beyond_length_ignored() -> None:
    raw, _ = rp.encode_request(rp.ACCOUNTING_REQUEST, 1, SECRET, rp.attr_int(at.ACCT_STATUS_TYPE, 1))
    p = decode(raw + b"\x01\x09garbage-padding")
    assert p.raw == raw
    assert p.attrs[-1] == (at.ACCT_STATUS_TYPE, b"\0\0\0\1")
    assert rp.verify_request_authenticator(p, SECRET) is True
    assert decode(bytearray(raw)).raw == raw
    assert decode(memoryview(raw + b"pad")).raw == raw


def test_r72_empty_attribute_value_allowed_and_4096_accepted() -> None:
    assert decode(_with_attrs(b"\x01\x02")).attrs == [(1, b"")]
    body = rp.attr(1, bytes(253)) * 15 + rp.attr(1, bytes(4096 - 20 - 15 * 255 - 2))
    assert len(decode(_with_attrs(body)).raw) == 4096


def test_r72_unknown_or_malformed_vendor_specific_passed_over() -> None:
    good = rp.attr_vsa(at.VENDOR_3GPP, at.TGPP_IMSI, b"001010000000009")
    short = rp.attr(at.VENDOR_SPECIFIC, b"\x00\x00")  # shorter than a vendor id
    bad_inner = rp.attr(at.VENDOR_SPECIFIC, (10415).to_bytes(4, "big") + b"\x01\x09abc")
    unknown = rp.attr_vsa(99999, at.TGPP_IMSI, b"not-ours")
    non_rfc_layout = rp.attr(at.VENDOR_SPECIFIC, (10415).to_bytes(4, "big") + b"\x00\x01\x00\x05x")
    p = decode(_with_attrs(short + bad_inner + unknown + non_rfc_layout + good))
    assert [t for t, _ in p.attrs] == [26] * 5
    assert p.vsa(at.VENDOR_3GPP, at.TGPP_IMSI) == b"001010000000009"
    assert p.vsa(99999, at.TGPP_IMSI) == b"not-ours"
    assert p.vsa(at.VENDOR_3GPP, at.TGPP_RAT_TYPE) is None
    assert rp.tgpp_rat_type(p) is None
    assert rp.split_vsa(bad_inner[2:]) is None


@pytest.mark.parametrize(("value", "expected"), [(b"\x06", 6), (b"\0\0\0\x01", 1), (b"\0\x06", None)])
def test_r70_tgpp_rat_type_widths(value: bytes, expected: int | None) -> None:
    """R-70: TS 29.061 — 3GPP-RAT-Type is one octet; four are accepted too."""
    p = decode(_with_attrs(rp.attr_vsa(at.VENDOR_3GPP, at.TGPP_RAT_TYPE, value)))
    assert rp.tgpp_rat_type(p) == expected


def test_r72_message_authenticator_duplicate_or_bad_length() -> None:
    raw, _ = rp.encode_request(rp.ACCESS_REQUEST, 1, SECRET, rp.attr(at.USER_NAME, b"a"))
    dup = raw[:2] + struct.pack("!H", len(raw) + 18) + raw[4:] + raw[20:38]
    assert rp.verify_message_authenticator(decode(raw), SECRET) is True
    assert rp.verify_message_authenticator(decode(dup), SECRET) is False
    short_ma = _with_attrs(rp.attr(at.MESSAGE_AUTHENTICATOR, bytes(15)))
    assert rp.verify_message_authenticator(decode(short_ma), SECRET) is False
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    assert rp.verify_message_authenticator(decode(flipped), SECRET) is False


def test_get_helpers() -> None:
    p = decode(_with_attrs(rp.attr(27, b"\0\0\1") + rp.attr(1, b"\xffok") + rp.attr(1, b"two")))
    assert p.get_int(27) is None  # wrong length
    assert p.get_int(28) is None
    assert p.get_str(1) == "\ufffdok"
    assert p.get_all(1) == [b"\xffok", b"two"]
    assert p.get(99) is None
    assert rp.octets64(None, None) == 0


# --- property tests (R-70 round trip, R-72 never crashes) -----------------------------------

_attr_lists = st.lists(
    st.tuples(st.integers(1, 255), st.binary(max_size=253)), max_size=15
)
_codes = st.sampled_from(
    [rp.ACCESS_ACCEPT, rp.ACCESS_REJECT, rp.ACCESS_CHALLENGE, rp.ACCOUNTING_RESPONSE, rp.COA_ACK, rp.COA_NAK]
)


@given(code=_codes, ident=st.integers(0, 255), attrs=_attr_lists, auth=st.binary(min_size=16, max_size=16))
def test_r70_response_round_trip(code: int, ident: int, attrs: list[tuple[int, bytes]], auth: bytes) -> None:
    out = rp.encode_response(code, ident, auth, SECRET, b"".join(rp.attr(t, v) for t, v in attrs))
    p = decode(out)
    assert (p.code, p.identifier) == (code, ident)
    assert p.attrs[1:] == attrs
    assert rp.verify_response_authenticator(p, auth, SECRET) is True
    if at.MESSAGE_AUTHENTICATOR not in (t for t, _ in attrs):
        assert rp.verify_message_authenticator(p, SECRET, auth) is True


@given(
    code=st.sampled_from([rp.ACCESS_REQUEST, rp.ACCOUNTING_REQUEST, rp.COA_REQUEST, rp.DISCONNECT_REQUEST]),
    ident=st.integers(0, 255),
    attrs=_attr_lists,
    with_ma=st.booleans(),
)
def test_r70_request_round_trip(code: int, ident: int, attrs: list[tuple[int, bytes]], with_ma: bool) -> None:
    raw, auth = rp.encode_request(code, ident, SECRET, b"".join(rp.attr(t, v) for t, v in attrs),
                                  message_authenticator=with_ma)
    p = decode(raw)
    assert p.authenticator == auth
    assert p.attrs[1 if with_ma else 0 :] == attrs
    if code != rp.ACCESS_REQUEST:
        assert rp.verify_request_authenticator(p, SECRET) is True


def _exercise(data: bytes) -> None:
    try:
        p = decode(data)
    except PacketError as exc:
        assert exc.reason in ("short", "length", "attribute")
        return
    p.vsa(at.VENDOR_3GPP, at.TGPP_IMSI)
    rp.tgpp_rat_type(p)
    p.get_int(at.ACCT_INPUT_OCTETS)
    p.get_str(at.USER_NAME)
    rp.verify_message_authenticator(p, SECRET)
    rp.verify_request_authenticator(p, SECRET)
    rp.verify_response_authenticator(p, bytes(16), SECRET)


@given(st.binary(max_size=300))
def test_r72_random_bytes_only_packet_error(data: bytes) -> None:
    _exercise(data)


@given(st.binary(max_size=280).map(lambda b: _with_attrs(b)))
def test_r72_random_attributes_only_packet_error(data: bytes) -> None:
    _exercise(data)


_VALID = rp.encode_request(
    rp.ACCESS_REQUEST,
    1,
    SECRET,
    rp.attr(at.USER_NAME, b"alice")
    + rp.pap_attr(b"pw", SECRET, bytes(16))
    + rp.attr_vsa(at.VENDOR_3GPP, at.TGPP_IMSI, b"001010123456789")
    + rp.attr_vsa(at.VENDOR_3GPP, at.TGPP_RAT_TYPE, b"\x06"),
    authenticator=bytes(16),
)[0]


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, len(_VALID) + 4))
def test_r72_mutated_valid_packets_only_packet_error(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_VALID)
    for pos, val in edits:
        data[pos] = val
    _exercise(bytes(data[:cut]))
    _exercise(bytes(data))


@pytest.mark.parametrize("key_len", [0, 1, 10, 63, 64, 65, 200])
def test_hmac_md5_matches_the_standard_library(key_len: int) -> None:
    """R-70: Message-Authenticator is HMAC-MD5 (RFC 3579 §3.2); the cached key pads give the same digest."""
    key = bytes(range(key_len))
    for msg in (b"", b"x", bytes(range(256)) * 3):
        assert rp.hmac_md5(key, msg) == std_hmac.digest(key, msg, "md5")
        assert rp.hmac_md5(key, msg) == std_hmac.digest(key, msg, "md5")  # from the cache


def test_hmac_md5_key_cache_is_bounded() -> None:
    for i in range(rp._PADS_LIMIT + 5):
        rp.hmac_md5(b"secret-%d" % i, b"m")
    assert len(rp._PADS) <= rp._PADS_LIMIT


def test_lookups_give_the_first_value_and_every_value_in_order() -> None:
    """R-72: a repeated attribute's first value is the one used; Proxy-States are all kept in order."""
    attrs = rp.attr(at.USER_NAME, b"a") + rp.attr(at.PROXY_STATE, b"p1") + rp.attr(at.USER_NAME, b"b") + rp.attr(
        at.PROXY_STATE, b"p2") + rp.attr_vsa(at.VENDOR_3GPP, at.TGPP_IMSI, b"4401")
    data, _ = rp.encode_request(rp.ACCESS_REQUEST, 1, b"s", attrs)
    pkt = decode(data)
    assert pkt.get(at.USER_NAME) == b"a"
    assert pkt.get_all(at.PROXY_STATE) == [b"p1", b"p2"]
    assert pkt.get_all(at.CLASS) == [] and pkt.get(at.CLASS) is None
    assert pkt.vsa(at.VENDOR_3GPP, at.TGPP_IMSI) == b"4401"
    bare = decode(rp.encode_request(rp.ACCESS_REQUEST, 2, b"s", rp.attr(at.USER_NAME, b"a"))[0])
    assert bare.vsa(at.VENDOR_3GPP, at.TGPP_IMSI) is None


def test_get_int_is_unsigned_32_bits() -> None:
    """R-72: four octets read as an unsigned integer, the top bit included (C arithmetic when compiled)."""
    for value in (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF):
        pkt = decode(rp.encode_request(rp.ACCOUNTING_REQUEST, 1, b"s", rp.attr_int(at.ACCT_INPUT_OCTETS, value))[0])
        assert pkt.get_int(at.ACCT_INPUT_OCTETS) == value
