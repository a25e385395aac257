"""radius.codes: packet codes by their RFC names, for logs; the codec's ints come from the same table."""

from quotad.radius import packet as rp
from quotad.radius.codes import Code


def test_names_are_the_rfcs() -> None:
    assert [Code.name_of(c) for c in (1, 4, 12, 40, 43, 44, 45)] == [
        "Access-Request", "Accounting-Request", "Status-Server", "Disconnect-Request", "CoA-Request", "CoA-ACK",
        "CoA-NAK"]


def test_a_code_no_rfc_defines_is_named_by_number() -> None:
    assert Code.name_of(99) == "code 99"


def test_the_codec_constants_are_plain_ints_of_the_same_table() -> None:
    assert (type(rp.COA_REQUEST), rp.COA_REQUEST, rp.ACCOUNTING_RESPONSE) == (int, Code.COA_REQUEST, 5)
