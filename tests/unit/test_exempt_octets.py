"""R-23: the zero-rated octets of an Accounting-Request, as quotad reads them (sans-I/O)."""

from __future__ import annotations

from quotad.aaa.accounting import _exempt_octets
from quotad.radius import packet as rp

QUOTAD = rp.VENDOR_QUOTAD.to_bytes(4, "big")


def packet(*attrs: bytes) -> rp.Packet:
    body = rp.attr_int(rp.ACCT_STATUS_TYPE, 3) + b"".join(attrs)
    return rp.decode(rp.encode_request(rp.ACCOUNTING_REQUEST, 1, b"s", body, message_authenticator=False)[0])


def sub(subtype: int, value: int) -> bytes:
    return bytes([subtype, 6]) + value.to_bytes(4, "big")


def test_r23_no_exempt_attributes_is_zero() -> None:
    assert _exempt_octets(packet(rp.attr_int(rp.ACCT_INPUT_OCTETS, 5))) == 0


def test_r23_input_and_output_with_gigawords() -> None:
    pkt = packet(rp.attr_vsa(rp.VENDOR_QUOTAD, 6, (7).to_bytes(4, "big")),
                 rp.attr_vsa(rp.VENDOR_QUOTAD, 7, (8).to_bytes(4, "big")),
                 rp.attr_vsa(rp.VENDOR_QUOTAD, 9, (1).to_bytes(4, "big")),
                 rp.attr_vsa(rp.VENDOR_QUOTAD, 10, (2).to_bytes(4, "big")))
    assert _exempt_octets(pkt) == (1 << 32) + 7 + (2 << 32) + 8


def test_r23_several_sub_attributes_in_one_vendor_specific() -> None:
    pkt = packet(rp.attr(rp.VENDOR_SPECIFIC, QUOTAD + sub(6, 7) + sub(7, 8)))
    assert _exempt_octets(pkt) == 15


def test_r23_other_vendors_wrong_lengths_and_repeats_ignored() -> None:
    pkt = packet(rp.attr_vsa(rp.VENDOR_3GPP, 6, (99).to_bytes(4, "big")),  # not quotad's
                 rp.attr_vsa(rp.VENDOR_QUOTAD, 7, (5).to_bytes(8, "big")),  # not an integer
                 rp.attr_vsa(rp.VENDOR_QUOTAD, 6, (3).to_bytes(4, "big")),
                 rp.attr_vsa(rp.VENDOR_QUOTAD, 6, (4).to_bytes(4, "big")))  # the first one counts
    assert _exempt_octets(pkt) == 3
