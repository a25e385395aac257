"""Reading TOML tables into typed, frozen dataclasses (config.py's sections), and the checks of
single values the sections share. Each problem is collected as ``(dotted key, reason)``, so a bad
file is reported whole (``ConfigError``), not one key at a time."""

from __future__ import annotations

import ipaddress
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any


class ConfigError(ValueError):
    """One or more bad settings; ``problems`` holds ``(key, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {reason}" for key, reason in problems))


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "Secret('***')"


def build(cls: type, data: Any, prefix: str, problems: list[tuple[str, str]]) -> Any:
    """An instance of dataclass ``cls`` from a TOML table: each key converted by its annotation
    (nested dataclasses, tuples, dicts, scalars); an unknown or ill-typed key is a problem named
    by its dotted key, and leaves the default."""
    if not isinstance(data, dict):
        problems.append((prefix.rstrip(".") or "(top)", "must be a table"))
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            problems.append((f"{prefix}{key}", "unknown setting"))
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = _convert(hints[f.name], data[f.name], f"{prefix}{f.name}", problems)
        if value is not MISSING:
            values[f.name] = value
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - only on a programming error
        problems.append((prefix.rstrip("."), str(exc)))
        return cls()


def _convert(hint: Any, value: Any, key: str, problems: list[tuple[str, str]]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(hint, type) and is_dataclass(hint):
        return build(hint, value, key + ".", problems)
    if origin is tuple:
        if not isinstance(value, list):
            problems.append((key, "must be a list"))
            return ()
        return tuple(_convert(args[0], v, f"{key}[{i}]", problems) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            problems.append((key, "must be a table"))
            return {}
        return {k: _convert(args[1], v, f"{key}.{k}", problems) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
        problems.append((key, "must be a string or an integer"))
        return MISSING
    return _scalar(hint, value, key, problems)


def _scalar(hint: Any, value: Any, key: str, problems: list[tuple[str, str]]) -> Any:
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        problems.append((key, f"must be an integer, got {value!r}"))
    elif hint is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        problems.append((key, f"must be a number, got {value!r}"))
    elif hint in (str, Secret) and not isinstance(value, str):
        shown = "a value of another type (not shown: a secret)" if hint is Secret else repr(value)
        problems.append((key, f"must be a string, got {shown}"))
    elif hint is bool and not isinstance(value, bool):
        problems.append((key, f"must be true or false, got {value!r}"))
    else:
        if hint is Secret:
            return Secret(value)
        return float(value) if hint is float else value
    return MISSING


def check_port(problems: list[tuple[str, str]], key: str, value: int, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        problems.append((key, f"must be an integer between {low} and 65535, got {value}"))


def check_ip(value: str, key: str, problems: list[tuple[str, str]]) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        problems.append((key, f"not an IP address: {value!r}"))
