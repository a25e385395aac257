"""Per-gateway secrets by source address or CIDR (R-70)."""

from __future__ import annotations

from quotad.radius.clients import Client, ClientTable

A = Client("a", b"secret-a")
B = Client("b", b"secret-b")
C = Client("c", b"secret-c")


def test_host_then_longest_prefix() -> None:
    table = ClientTable([("10.0.0.0/8", A), ("10.1.0.0/16", B), ("10.1.2.3", C)])
    assert table.find("10.1.2.3") is C
    assert table.find("10.1.9.9") is B
    assert table.find("10.200.0.1") is A
    assert table.find("192.0.2.1") is None
    assert table.find("not-an-ip") is None


def test_ipv6_and_secret_not_in_repr() -> None:
    table = ClientTable([("2001:db8::/32", A)])
    assert table.find("2001:db8::1") is A
    assert table.find("10.0.0.1") is None
    assert "secret" not in repr(A)
