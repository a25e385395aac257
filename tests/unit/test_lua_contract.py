"""The named contract between Python and the Lua scripts (quota/lua.py): each script's header, the
locals it unpacks KEYS and ARGV into, the names Python declares and the ARGV its builder makes
agree, so a field added on one side only fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from quotad.publicsafety import store as ps_store
from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota import store as quota_store
from quotad.quota.model import QuotaSettings
from quotad.quota.resp import Encoded, flat

SCRIPTS_DIR = Path(lua.__file__).parent / "scripts"
SCRIPT_FILES = sorted(p.stem for p in SCRIPTS_DIR.glob("*.lua") if not p.stem.startswith("_"))
PRELUDES = sorted(p.stem for p in SCRIPTS_DIR.glob("_*.lua"))
TAGS = ("Prepended", "Constants", "KEYS", "ARGV", "Reply")


def header(text: str) -> dict[str, str]:
    """The tagged lines of a script's leading comment; a list ending in ',' goes on, indented."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        tag, sep, value = line.partition(":")
        if sep and tag in TAGS:
            while value.rstrip().endswith(",") and i + 1 < len(lines):
                i += 1
                value += " " + lines[i]
            out[tag] = value.strip()
    return out


def names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",")) if value else ()


def plain_names(declared: tuple[str, ...]) -> tuple[str, ...]:
    """The names a script unpacks: without the variadic rest, optional ones as plain names."""
    return tuple(n.rstrip("?") for n in declared if not n.endswith("..."))


def unpacked(text: str, table: str) -> tuple[str, ...] | None:
    found = re.findall(rf"^local\s+([\w\s,]+?)\s*=\s*unpack\({table}\)", text, re.M)
    assert len(found) <= 1, f"{table} unpacked {len(found)} times"
    return tuple(n.strip() for n in found[0].split(",")) if found else None


def test_every_script_file_is_declared_and_every_declared_script_has_a_file() -> None:
    assert sorted(lua.SCRIPTS) == SCRIPT_FILES


@pytest.mark.parametrize("name", SCRIPT_FILES)
def test_header_names_keys_argv_reply_and_what_is_prepended(name: str) -> None:
    spec = lua.SCRIPTS[name]
    text = (SCRIPTS_DIR / f"{name}.lua").read_text()
    assert text.startswith(f"-- {name}.lua: ")
    head = header(text)
    assert head.get("Reply")
    assert names(head.get("KEYS", "")) == spec.keys
    assert names(head.get("ARGV", "")) == spec.argv
    assert names(head.get("Constants", "")) == spec.constants
    assert names(head.get("Prepended", "")) == tuple(f"{p}.lua" for p in spec.prelude)
    assert set(spec.prelude) <= set(PRELUDES)


@pytest.mark.parametrize("name", SCRIPT_FILES)
def test_script_unpacks_its_keys_and_argv_into_the_header_names(name: str) -> None:
    spec = lua.SCRIPTS[name]
    text = (SCRIPTS_DIR / f"{name}.lua").read_text()
    for table, declared in (("KEYS", spec.keys), ("ARGV", spec.argv)):
        wanted = plain_names(declared)
        assert unpacked(text, table) == (wanted or None), table
    # Fields are read by name: no KEYS[6] or ARGV[16] in a script (a loop over the rest may index).
    assert re.findall(r"\b(?:KEYS|ARGV)\[\d+\]", text) == []


@pytest.mark.parametrize("name", SCRIPT_FILES)
def test_the_builder_makes_exactly_the_declared_argv(name: str) -> None:
    """Each builder parameter is given its own name (a group: its names, encoded once; the rest: a
    list of its name): the ARGV made must be the header's names, in order."""
    spec = lua.SCRIPTS[name]
    rest = {n[:-3] for n in spec.argv if n.endswith("...")}
    values = {}
    for param in inspect.signature(spec.build).parameters:
        if param in lua.GROUPS:
            values[param] = Encoded(*lua.GROUPS[param])
        elif param == "calendar":
            values[param] = Encoded(*lua.CALENDAR)
        elif param in rest:
            values[param] = [param]
        else:
            values[param] = param
    assert flat(spec.build(**values)) == [n.removesuffix("...") for n in spec.argv]


def test_key_lists_python_builds_have_the_declared_lengths() -> None:
    ck = k.ContractKeys("c1")
    assert len(ck.pool_keys()) == len(lua.POOL)
    assert len(ck.session_keys("m", "s", ["d0", "d1", "d2"])) == len(lua.SESSION_KEYS)
    assert len(k.IpPoolKeys("100.64.0.0/24").all()) == len(lua.IP_POOL)
    assert lua.SCRIPTS["attach"].keys[:len(lua.SESSION_KEYS)] == lua.SESSION_KEYS
    assert lua.SCRIPTS["account"].keys[:len(lua.SESSION_KEYS)] == lua.SESSION_KEYS


def test_every_script_a_store_runs_is_declared() -> None:
    assert set(quota_store.SCRIPTS) | set(ps_store.SCRIPTS) == set(lua.SCRIPTS)


def test_prepended_files_come_first_in_the_source_sent() -> None:
    source = lua.SCRIPTS["account"].source(lua.constants(QuotaSettings()))
    assert source.index("-- _lib.lua:") < source.index("-- _counters.lua:") < source.index("-- account.lua:")
    assert lua.SCRIPTS["ip_alloc"].source().startswith("-- ip_alloc.lua:")


@pytest.mark.parametrize("name", [name for name in SCRIPT_FILES if lua.SCRIPTS[name].constants])
def test_constants_are_set_once_before_the_script_from_the_settings(name: str) -> None:
    """A script's constants are neither ARGV nor its own locals: the line source() writes after
    the prepended files sets them all, from lua.constants (one value for each name declared)."""
    spec = lua.SCRIPTS[name]
    text = (SCRIPTS_DIR / f"{name}.lua").read_text()
    assert not set(spec.constants) & set(spec.argv)
    for constant in spec.constants:
        assert re.search(rf"\b{constant}\b", text.split("\nlocal ", 1)[1]), constant  # used past the header
        assert not re.search(rf"^local\s+[\w\s,]*\b{constant}\b", text, re.M), constant
    values = lua.constants(QuotaSettings())
    source = spec.source(values)
    line = f"local {', '.join(spec.constants)} = {', '.join(str(values[c]) for c in spec.constants)}"
    assert source.count(line) == 1
    assert source.index(line) < source.index(f"-- {name}.lua:")
    if spec.prelude:
        assert source.index(line) > source.index(f"-- {spec.prelude[-1]}.lua:")
    with pytest.raises(ValueError, match=spec.constants[0]):
        spec.source({})


def test_header_parser_follows_a_list_over_lines() -> None:
    text = "-- x.lua: y\n-- KEYS: a, b,\n--   c\n-- ARGV: d\n-- Reply: 1\n--\n--   note, not a name\nlocal a = 1\n"
    assert header(text) == {"KEYS": "a, b, c", "ARGV": "d", "Reply": "1"}


def test_replies_parse_into_named_fields() -> None:
    facts = [b"tiny", b"active", b"1", 5, 100, 0, b"high"]
    reply = lua.attach_reply([b"ok", 10, facts, b"g.1", 1, 0, b"s1"])
    assert (reply.status, reply.granted, reply.generation, reply.same, reply.new, reply.session_id) == (
        "ok", 10, "g.1", True, False, "s1")
    assert reply.facts is not None and reply.facts.held == 5 and reply.facts.coupon_on
    assert lua.attach_reply([b"retry", b"s2"]).session_id == "s2"
    assert lua.attach_reply([b"suspended"]).status == "suspended"
    result = lua.account_reply([b"counted", 1, 2, 3, 4, 5, facts, 1])
    assert result is not None and (result.added, result.overrun_added, result.fresh) == (1, 4, True)
    assert lua.account_reply([b"unknown"]) is None
    assert lua.refusal([b"ERR", b"conflict", b"iccid", b"898"]) == lua.Refusal("conflict", "iccid", "898")
    assert lua.refusal([b"OK", facts]) is None
    view = lua.view_reply([b"ok", b"tiny", b"20250101", b"00000001", b"bundle", 10, 5, b"1.5"])
    assert view is not None and view.buckets[0].left == 5
