"""FreeRADIUS-format dictionaries and the attribute encoder used by config templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyrad import packet as pp
from pyrad.dictionary import Dictionary as PyradDictionary

from quotad.radius import packet as rp
from quotad.radius.dictionary import AttrDef, Dictionary, DictionaryError, default_dictionary_path


@pytest.fixture(scope="module")
def d() -> Dictionary:
    return Dictionary.load()


def test_default_path_is_packaged() -> None:
    assert default_dictionary_path().is_file()
    assert default_dictionary_path().parent.name == "dictionaries"


def test_loads_all_included_files(d: Dictionary) -> None:
    assert d.vendors == {"3GPP": 10415, "quotad": 58813}
    assert d.lookup("User-Name") == AttrDef("User-Name", 0, 1, "string")
    assert d.lookup("3GPP-IMSI") == AttrDef("3GPP-IMSI", 10415, 1, "string")
    assert d.lookup("Quotad-Granted-Octets") == AttrDef("Quotad-Granted-Octets", 58813, 1, "integer64")
    assert d.lookup("user-password").flags == ("encrypt=1",)
    assert d.lookup("Service-Type").values["Authorize-Only"] == 17
    assert d.lookup("3GPP-RAT-Type").values["EUTRAN"] == 6
    assert d.lookup("Error-Cause").values["Session-Context-Not-Found"] == 503
    assert d.lookup("Acct-Terminate-Cause").values["Idle-Timeout"] == 4


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("Message-Authenticator", rp.MESSAGE_AUTHENTICATOR),
        ("Framed-IPv6-Prefix", rp.FRAMED_IPV6_PREFIX),
        ("Delegated-IPv6-Prefix", 123),
        ("Framed-IPv6-Address", 168),
        ("Acct-Interim-Interval", rp.ACCT_INTERIM_INTERVAL),
        ("Event-Timestamp", rp.EVENT_TIMESTAMP),
        ("NAS-Port-Type", rp.NAS_PORT_TYPE),
        ("Error-Cause", rp.ERROR_CAUSE),
    ],
)
def test_standard_numbers_match_packet_constants(d: Dictionary, name: str, number: int) -> None:
    assert d.lookup(name).number == number
    assert d.name_of(0, number) == name


def test_name_of(d: Dictionary) -> None:
    assert d.name_of(rp.VENDOR_3GPP, rp.TGPP_USER_LOCATION_INFO) == "3GPP-User-Location-Info"
    assert d.name_of(rp.VENDOR_QUOTAD, 8) == "Quotad-Exempt-Rule"
    assert d.name_of(0, 254) is None
    assert d.name_of(4242, 1) is None


@pytest.mark.parametrize(
    ("name", "value", "wire"),
    [
        ("User-Name", "alice", "0107616c696365"),
        ("Session-Timeout", 3600, "1b0600000e10"),
        ("Session-Timeout", "3600", "1b0600000e10"),
        ("Service-Type", "Authorize-Only", "060600000011"),
        ("Acct-Status-Type", "Interim-Update", "280600000003"),
        ("Framed-IP-Address", "192.0.2.1", "0806c0000201"),
        # RFC 3162 §2.3: reserved 0, prefix length 56, then the 7 prefix octets.
        ("Framed-IPv6-Prefix", "2001:db8::/56", "610b003820010db8000000"),
        ("Delegated-IPv6-Prefix", "2001:db8:1::/48", "7b0a003020010db80001"),
        ("Framed-IPv6-Address", "2001:db8::1", "a81220010db8000000000000000000000001"),
        ("Framed-Interface-Id", "0:0:0:1", "600a0000000000000001"),
        ("Class", "0xdeadbeef", "1906deadbeef"),
        ("Filter-Id", 100, "0b05313030"),
        ("3GPP-IMSI", "001010123456789", "1a17000028af0111303031303130313233343536373839"),
        # TS 29.061: 3GPP-RAT-Type is one octet although the dictionary says integer.
        ("3GPP-RAT-Type", "EUTRAN", "1a09000028af150306"),
        ("3GPP-RAT-Type", 1, "1a09000028af150301"),
        ("Quotad-Granted-Octets", 10_000_000_000, "1a100000e5bd010a00000002540be400"),
        ("Quotad-Rate-Down", 2_000_000, "1a0c0000e5bd0406001e8480"),
        ("Quotad-Speed-Profile", "gold", "1a0c0000e5bd0306676f6c64"),
    ],
)
def test_encode(d: Dictionary, name: str, value: str | int, wire: str) -> None:
    assert d.encode(name, value).hex() == wire


def test_encoded_attributes_read_by_pyrad(d: Dictionary) -> None:
    """Our encodings, put in a reply, decode in pyrad to the values we meant."""
    attrs = b"".join(
        [
            d.encode("Framed-IPv6-Prefix", "2001:db8::/56"),
            d.encode("Quotad-Granted-Octets", 10_000_000_000),
            d.encode("Framed-IP-Address", "192.0.2.1"),
            d.encode("Service-Type", "Framed-User"),
        ]
    )
    out = rp.encode_response(rp.ACCESS_ACCEPT, 1, bytes(16), b"k", attrs)
    reply = pp.Packet(packet=out, secret=b"k", dict=PyradDictionary(str(default_dictionary_path())))
    assert reply["Framed-IPv6-Prefix"] == ["2001:db8::/56"]
    assert reply["Quotad-Granted-Octets"] == [10_000_000_000]
    assert reply["Framed-IP-Address"] == ["192.0.2.1"]
    assert reply["Service-Type"] == ["Framed-User"]


def test_encode_unknown_attribute_named(d: Dictionary) -> None:
    with pytest.raises(DictionaryError, match="No-Such-Attribute"):
        d.encode("No-Such-Attribute", "x")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Service-Type", "Bogus-Service"),
        ("Session-Timeout", -1),
        ("Session-Timeout", 1 << 32),
        ("Framed-IP-Address", "10.0.0.256"),
        ("Framed-IPv6-Prefix", "2001:db8::1/56"),  # host bits set
        ("Framed-IPv6-Prefix", "not-a-prefix"),
        ("3GPP-RAT-Type", 256),
        ("Class", "0xzz"),
        ("User-Name", "x" * 254),
        ("3GPP-IMSI", "x" * 248),
        ("Framed-Interface-Id", "1:2:3"),
    ],
)
def test_encode_bad_value_names_attribute_and_value(d: Dictionary, name: str, value: str | int) -> None:
    with pytest.raises(DictionaryError) as exc:
        d.encode(name, value)
    assert name in str(exc.value)
    assert repr(value) in str(exc.value)


def _write(tmp_path: Path, text: str, name: str = "dictionary") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_include_relative_and_old_style_vendor(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", "VENDOR Acme 9999\nATTRIBUTE Acme-Thing 5 string Acme\n", "dictionary.acme")
    top = _write(tmp_path, "# comment\nATTRIBUTE Foo 1 integer # trailing\n$INCLUDE sub/dictionary.acme\n"
                           "VALUE Foo Bar 0x10\n")
    d = Dictionary.load(top)
    assert d.lookup("Acme-Thing") == AttrDef("Acme-Thing", 9999, 5, "string")
    assert d.lookup("foo").values == {"Bar": 16}
    assert d.encode("Acme-Thing", "x") == rp.attr_vsa(9999, 5, b"x")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ATTRIBUTE Foo 1 float\n", "unsupported type"),
        ("ATTRIBUTE Foo x integer\n", "bad attribute number"),
        ("ATTRIBUTE Foo 300 integer\n", "out of range"),
        ("ATTRIBUTE Foo 1 integer\nATTRIBUTE Foo 2 integer\n", "duplicate attribute Foo"),
        ("VALUE Nope Bar 1\n", "VALUE for unknown attribute Nope"),
        ("BEGIN-VENDOR Nope\n", "unknown vendor"),
        ("VENDOR V 1 format=2,1\n", "unsupported vendor format"),
        ("VENDOR V 1\nBEGIN-VENDOR V\nEND-VENDOR W\n", "does not close"),
        ("FROB x\n", "cannot parse"),
        ("$INCLUDE missing.file\n", "cannot read"),
    ],
)
def test_bad_dictionary_reports_file_and_line(tmp_path: Path, text: str, reason: str) -> None:
    path = _write(tmp_path, "# header\n" + text)
    with pytest.raises(DictionaryError) as exc:
        Dictionary.load(path)
    assert reason in str(exc.value)
    assert str(exc.value).startswith(str(path.resolve()) + ":")


def test_include_loop_detected(tmp_path: Path) -> None:
    path = _write(tmp_path, "$INCLUDE dictionary\n")
    with pytest.raises(DictionaryError, match="loop"):
        Dictionary.load(path)
