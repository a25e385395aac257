"""The Class attribute round trip (accounting finds its line without a lookup)."""

from quotad.aaa import classattr


def test_round_trip_and_foreign_class_ignored() -> None:
    value = classattr.encode("fam", "819000000001", "abcd")
    assert classattr.decode(value) == classattr.ClassInfo("fam", "819000000001", "abcd")
    assert classattr.decode(b"other-server-class") is None
    assert classattr.decode(None) is None
    assert classattr.decode(b"quotad1;only-two") is None
    # A gateway's Acct-Session-Id may hold ';': the session id is everything after the MSISDN.
    assert classattr.decode(b"quotad1;fam;819000000001;gw/x;y") == classattr.ClassInfo("fam", "819000000001", "gw/x;y")
