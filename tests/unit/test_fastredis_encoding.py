"""The hot-path client's RESP encoding (quota.resp): both paths give the same bytes.

Every test runs twice: against the compiled encoder (Cython's build of quotad/quota/_resp.py)
and against the same source as plain Python; and the two give the same bytes for any arguments.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotad.quota import resp
from tests.conftest import implementation_of


@pytest.fixture(scope="module", params=["compiled", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The encoder under test: its ``Encoded`` is the only one its ``encode_command`` knows."""
    return implementation_of(resp, request.param)


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", "v"),
        ("GET", "ключ"),
        ("X", b"\x00\xff", 1, 2.5, True),
        ("EVALSHA", "abc", 2, "k1", "k2", 10**12, 1.0),
    ],
)
def test_encoding(impl: ModuleType, args: tuple) -> None:
    assert impl.encode_command(args) == impl._encode_bytes(args)


def test_resp_layout(impl: ModuleType) -> None:
    assert impl.encode_command(("GET", "k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert impl.encode_command(("GET", "é")) == b"*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n"


@pytest.mark.parametrize(
    "args",
    [
        (("EVALSHA", "abc"), 2, ("k1", "k2"), "now", (10, 86400), 1),
        (("EVALSHA", "abc"), 1, "ключ", ("x", 2.5)),  # non-ASCII: the bytes path
        (("GET", "é"), ),  # a non-ASCII run itself
        ((), "k"),
    ],
)
def test_encoded_runs_give_the_bytes_of_their_values(impl: ModuleType, args: tuple) -> None:
    args = runs(impl, args)  # a tuple of values here stands for an Encoded run of them
    flat = tuple(impl.flat(list(args)))
    assert impl.encode_command(args) == impl._encode_bytes(args) == impl.encode_command(flat)


def test_encoded_layout_and_helpers(impl: ModuleType) -> None:
    run = impl.Encoded("k1", 7)
    assert run.resp == b"$2\r\nk1\r\n$1\r\n7\r\n" and run.count == 2 and run.text == run.resp.decode()
    assert impl.encode_command(("EVALSHA", "s", 2, run)) == impl.encode_command(("EVALSHA", "s", 2, "k1", "7"))
    assert impl.flat(["a", run, 3]) == ["a", "k1", 7, 3]
    assert impl.flat(run) == ["k1", 7]
    again = impl.Encoded.from_parts(run.values, run.resp, run.text)
    assert type(again) is impl.Encoded and (again.values, again.count, again.text) == (("k1", 7), 2, run.text)
    assert repr(again) == "Encoded('k1', 7)"
    assert impl.Encoded("é").text is None
    with pytest.raises(AttributeError):
        run.other = 1  # __slots__, compiled or not


def test_the_public_module_hands_out_the_running_build() -> None:
    assert resp.Encoded is resp.running().Encoded and resp.encode_command is resp.running().encode_command
    assert resp.COMPILED is (resp.IMPLEMENTATION == "cython")
    assert (resp.plain().__file__ or "").endswith(".py")
    from quotad.quota import fastredis

    assert fastredis.Encoded is resp.Encoded  # one class in the process: encode_command knows it


def runs(impl: ModuleType, args: tuple) -> tuple:
    """``args`` with each tuple made an Encoded run of ``impl``'s."""
    return tuple(impl.Encoded(*value) if type(value) is tuple else value for value in args)


scalars = st.one_of(
    st.text(max_size=12),  # non-ASCII and NUL included
    st.binary(max_size=12),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(),
    st.booleans(),
)
arguments = st.lists(st.one_of(scalars, st.lists(scalars, max_size=4).map(tuple)), max_size=12).map(tuple)


def reference(args: tuple) -> bytes:
    """RESP as the protocol spells it, with the encoding of each value the encoder documents."""
    values: list[Any] = [v for a in args for v in (a if type(a) is tuple else (a,))]

    def arg(value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, bool):
            return b"1" if value else b"0"
        return (repr(value) if isinstance(value, float) else str(value)).encode()

    return b"*%d\r\n" % len(values) + b"".join(b"$%d\r\n%b\r\n" % (len(arg(v)), arg(v)) for v in values)


@given(args=arguments)
def test_compiled_and_plain_give_the_same_bytes(impl: ModuleType, args: tuple) -> None:
    plain = resp.plain()
    expected = plain.encode_command(runs(plain, args))
    assert expected == reference(args)
    assert impl.encode_command(runs(impl, args)) == expected
