"""The hot-path client's RESP encoding (both paths give the same bytes)."""

import pytest

from quotad.quota.fastredis import _encode_bytes, encode_command


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", "v"),
        ("GET", "ключ"),
        ("X", b"\x00\xff", 1, 2.5, True),
        ("EVALSHA", "abc", 2, "k1", "k2", 10**12, 1.0),
    ],
)
def test_encoding(args: tuple) -> None:
    assert encode_command(args) == _encode_bytes(args)


def test_resp_layout() -> None:
    assert encode_command(("GET", "k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert encode_command(("GET", "é")) == b"*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n"
