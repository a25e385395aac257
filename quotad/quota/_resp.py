"""RESP encoding of the hot path's Redis commands (quota.fastredis); import ``resp``.

This file is plain Python and is also compiled by Cython at install time with the C types of
``_resp.pxd`` (setup.py); ``resp`` chooses which runs. Keep it valid for both: no ``import
cython``, annotations for mypy only (Cython ignores them), and a name's Python behaviour
unchanged by its declaration there. Nothing outside ``resp`` imports this module: a compiled
and a plain ``Encoded`` are two classes, and ``encode_command`` knows only its own.
"""

from __future__ import annotations

from typing import Any


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


class Encoded:
    """Arguments encoded once as RESP bulk strings, for values that repeat from call to call (a
    script's SHA, the month's calendar arguments, fixed settings, the IP pool's keys). Stands for
    ``len(values)`` arguments wherever it appears in a command's arguments."""

    __slots__ = ("count", "resp", "text", "values")

    def __init__(self, *values: Any) -> None:
        self.values = values
        self.count = len(values)
        self.resp = b"".join([_bulk(_arg(v)) for v in values])
        self.text = self.resp.decode() if self.resp.isascii() else None  # for the all-text fast path

    @classmethod
    def from_parts(cls, values: tuple[Any, ...], resp: bytes, text: str | None) -> Encoded:
        """The run of ``values`` from their encoding made earlier (``resp``, and ``text`` when ASCII)."""
        run = cls.__new__(cls)
        run.values, run.count, run.resp, run.text = values, len(values), resp, text
        return run

    def __repr__(self) -> str:
        return f"Encoded{self.values!r}"


def flat(values: Encoded | list[Any]) -> list[Any]:
    """``values`` with every Encoded replaced by the values it stands for (for redis-py)."""
    if isinstance(values, Encoded):
        return list(values.values)
    out: list[Any] = []
    for value in values:
        if type(value) is Encoded:
            out.extend(value.values)
        else:
            out.append(value)
    return out


def encode_command(args: tuple[Any, ...]) -> bytes:
    """RESP array of bulk strings (fast path: all-ASCII str/int/float arguments, one encode)."""
    parts: list[str] = []
    n = 0
    for value in args:
        kind = type(value)
        if kind is str:
            parts.append(f"${len(value)}\r\n{value}\r\n")
        elif kind is int:
            text = str(value)
            parts.append(f"${len(text)}\r\n{text}\r\n")
        elif kind is Encoded:
            run = value  # typed in _resp.pxd: its fields are read in C
            if run.text is None:
                return _encode_bytes(args)
            parts.append(run.text)
            n += run.count - 1
        elif kind is float:
            text = repr(value)
            parts.append(f"${len(text)}\r\n{text}\r\n")
        else:
            return _encode_bytes(args)
    body = "".join(parts)
    if not body.isascii():
        return _encode_bytes(args)
    return f"*{n + len(args)}\r\n{body}".encode()


def _encode_bytes(args: tuple[Any, ...]) -> bytes:
    parts = []
    n = 0
    for value in args:
        if type(value) is Encoded:
            run = value
            parts.append(run.resp)
            n += run.count
        else:
            parts.append(_bulk(_arg(value)))
            n += 1
    return b"*%d\r\n%b" % (n, b"".join(parts))
