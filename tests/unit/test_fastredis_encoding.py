"""The hot-path client's RESP encoding (both paths give the same bytes)."""

import pytest

from quotad.quota.fastredis import Encoded, _encode_bytes, encode_command, plain


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


@pytest.mark.parametrize(
    "args",
    [
        (Encoded("EVALSHA", "abc"), 2, Encoded("k1", "k2"), "now", Encoded(10, 86400), 1),
        (Encoded("EVALSHA", "abc"), 1, "ключ", Encoded("x", 2.5)),  # non-ASCII: the bytes path
        (Encoded("GET", "é"), ),  # a non-ASCII run itself
        (Encoded(), "k"),
    ],
)
def test_encoded_runs_give_the_bytes_of_their_values(args: tuple) -> None:
    flat = tuple(plain(list(args)))
    assert encode_command(args) == _encode_bytes(args) == encode_command(flat)


def test_encoded_layout_and_helpers() -> None:
    run = Encoded("k1", 7)
    assert run.resp == b"$2\r\nk1\r\n$1\r\n7\r\n" and run.count == 2
    assert encode_command(("EVALSHA", "s", 2, run)) == encode_command(("EVALSHA", "s", 2, "k1", "7"))
    assert plain(["a", run, 3]) == ["a", "k1", 7, 3]
    assert plain(run) == ["k1", 7]
