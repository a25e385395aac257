"""FreeRADIUS-format dictionary loader and a value encoder for configured reply attributes.

Used at startup (config templates), not per packet: clarity over speed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from quotad.radius import packet

TYPES = frozenset(
    (
        "string", "octets", "ipaddr", "ipv6addr", "ipv6prefix", "integer", "integer64",
        "date", "byte", "short", "signed", "ether", "ifid",
    )
)  # fmt: skip
_INT_SIZES = {"byte": 1, "short": 2, "integer": 4, "date": 4, "integer64": 8}


class DictionaryError(ValueError):
    """A bad dictionary line (``file:line: reason``) or a bad name/value given to encode()."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file is not None else ""
        super().__init__(where + reason)
        self.reason = reason
        self.file = file
        self.line = line


@dataclass(frozen=True, slots=True)
class AttrDef:
    """One attribute definition; ``vendor`` is 0 for standard attributes."""

    name: str
    vendor: int
    number: int
    type: str
    values: dict[str, int] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


def default_dictionary_path() -> Path:
    """The top dictionary file shipped in the quotad package."""
    return Path(__file__).with_name("dictionaries") / "dictionary"


def _number(text: str, what: str, file: str, line: int) -> int:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise DictionaryError(f"bad {what} number {text!r}", file, line) from None


class _Parser:
    """State of one load(): the current vendor block and VALUEs waiting for their attribute."""

    def __init__(self, target: Dictionary) -> None:
        self.d = target
        self.vendor = 0
        self.vendor_name = ""
        self.pending: list[tuple[list[str], str, int]] = []
        self.open_files: list[Path] = []

    def read(self, path: Path) -> None:
        path = path.resolve()
        if path in self.open_files:
            raise DictionaryError(f"$INCLUDE loop on {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            where = str(self.open_files[-1]) if self.open_files else None
            raise DictionaryError(f"cannot read {path}: {exc.strerror}", where) from None
        self.open_files.append(path)
        for lineno, raw in enumerate(text.splitlines(), 1):
            tokens = raw.split("#", 1)[0].split()
            if tokens:
                self.line(tokens, str(path), lineno)
        self.open_files.pop()

    def line(self, tokens: list[str], file: str, lineno: int) -> None:
        keyword = tokens[0]
        if keyword == "$INCLUDE" and len(tokens) == 2:
            self.read(Path(file).parent / tokens[1])
        elif keyword == "ATTRIBUTE":
            self.attribute(tokens, file, lineno)
        elif keyword == "VALUE" and len(tokens) == 4:
            self.pending.append((tokens, file, lineno))
        elif keyword == "VENDOR" and len(tokens) in (3, 4):
            if len(tokens) == 4 and tokens[3] != "format=1,1":
                raise DictionaryError(f"unsupported vendor format {tokens[3]!r}", file, lineno)
            self.d.vendors[tokens[1]] = _number(tokens[2], "vendor", file, lineno)
        elif keyword == "BEGIN-VENDOR" and len(tokens) == 2:
            if tokens[1] not in self.d.vendors:
                raise DictionaryError(f"unknown vendor {tokens[1]!r}", file, lineno)
            self.vendor, self.vendor_name = self.d.vendors[tokens[1]], tokens[1]
        elif keyword == "END-VENDOR" and len(tokens) == 2:
            if tokens[1] != self.vendor_name:
                raise DictionaryError(f"END-VENDOR {tokens[1]} does not close a block", file, lineno)
            self.vendor, self.vendor_name = 0, ""
        else:
            raise DictionaryError(f"cannot parse {' '.join(tokens)!r}", file, lineno)

    def attribute(self, tokens: list[str], file: str, lineno: int) -> None:
        if len(tokens) not in (4, 5):
            raise DictionaryError("ATTRIBUTE needs name, number, type [flags]", file, lineno)
        name, number, type_ = tokens[1], _number(tokens[2], "attribute", file, lineno), tokens[3]
        vendor = self.vendor
        flags: tuple[str, ...] = ()
        if len(tokens) == 5:
            if tokens[4] in self.d.vendors:  # old style: ATTRIBUTE name number type vendor
                vendor = self.d.vendors[tokens[4]]
            else:
                flags = tuple(tokens[4].split(","))
        if type_ not in TYPES:
            raise DictionaryError(f"unsupported type {type_!r} for {name}", file, lineno)
        if not 1 <= number <= 255:
            raise DictionaryError(f"attribute number {number} of {name} out of range 1..255", file, lineno)
        if name.lower() in self.d.attrs:
            raise DictionaryError(f"duplicate attribute {name}", file, lineno)
        adef = AttrDef(name, vendor, number, type_, {}, flags)
        self.d.attrs[name.lower()] = adef
        self.d.numbers.setdefault((vendor, number), adef)

    def resolve_values(self) -> None:
        for tokens, file, lineno in self.pending:
            _, attr_name, value_name, number = tokens
            adef = self.d.attrs.get(attr_name.lower())
            if adef is None:
                raise DictionaryError(f"VALUE for unknown attribute {attr_name}", file, lineno)
            adef.values[value_name] = _number(number, "value", file, lineno)


class Dictionary:
    """Attribute definitions by name (case-insensitive, as in FreeRADIUS) and by number."""

    def __init__(self) -> None:
        self.attrs: dict[str, AttrDef] = {}
        self.numbers: dict[tuple[int, int], AttrDef] = {}
        self.vendors: dict[str, int] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> Dictionary:
        """Read a dictionary file and its $INCLUDEs; the packaged one by default."""
        d = cls()
        parser = _Parser(d)
        parser.read(Path(path) if path is not None else default_dictionary_path())
        parser.resolve_values()
        return d

    def lookup(self, name: str) -> AttrDef:
        """The definition of ``name``; DictionaryError naming it if unknown."""
        adef = self.attrs.get(name.lower())
        if adef is None:
            raise DictionaryError(f"unknown attribute {name!r}")
        return adef

    def name_of(self, vendor: int, number: int) -> str | None:
        """The attribute name for (vendor, number), or None."""
        adef = self.numbers.get((vendor, number))
        return adef.name if adef else None

    def encode(self, name: str, value: str | int) -> bytes:
        """A complete wire attribute (wrapped in Vendor-Specific for vendor attributes)."""
        adef = self.lookup(name)
        try:
            payload = _encode_value(adef, value)
            if adef.vendor:
                return packet.attr_vsa(adef.vendor, adef.number, payload)
            return packet.attr(adef.number, payload)
        except (ValueError, TypeError, OverflowError) as exc:
            raise DictionaryError(f"bad value {value!r} for {adef.name} ({adef.type}): {exc}") from None


def _encode_int(adef: AttrDef, value: str | int) -> bytes:
    if isinstance(value, str):
        number = adef.values.get(value)
        if number is None:
            number = int(value, 16) if value.lower().startswith("0x") else int(value)
    else:
        number = value
    if adef.vendor == packet.VENDOR_3GPP and adef.number == packet.TGPP_RAT_TYPE:
        # TS 29.061 defines 3GPP-RAT-Type as one octet; the dictionary lists it as integer
        # only so VALUE names work.
        return number.to_bytes(1, "big")
    if adef.type == "signed":
        return number.to_bytes(4, "big", signed=True)
    return number.to_bytes(_INT_SIZES[adef.type], "big")


def _encode_value(adef: AttrDef, value: str | int) -> bytes:
    t = adef.type
    if t in _INT_SIZES or t == "signed":
        return _encode_int(adef, value)
    if isinstance(value, int) and t in ("string", "octets"):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError("expected text")
    if t == "string":
        return value.encode("utf-8")
    if t == "octets":
        return bytes.fromhex(value[2:]) if value.lower().startswith("0x") else value.encode("utf-8")
    if t == "ipaddr":
        return ipaddress.IPv4Address(value).packed
    if t == "ipv6addr":
        return ipaddress.IPv6Address(value).packed
    if t == "ipv6prefix":
        # RFC 3162 §2.3: reserved octet, prefix length, then only the octets the prefix covers.
        net = ipaddress.IPv6Network(value, strict=True)
        plen = net.prefixlen
        return bytes((0, plen)) + net.network_address.packed[: (plen + 7) // 8]
    if t == "ether":
        return _hex_groups(value, ":", 6, 1)
    if t == "ifid":
        return _hex_groups(value, ":", 4, 2)
    raise ValueError(f"cannot encode type {t}")


def _hex_groups(value: str, sep: str, groups: int, width: int) -> bytes:
    parts = value.split(sep)
    if len(parts) != groups or not all(0 < len(p) <= 2 * width for p in parts):
        raise ValueError(f"expected {groups} groups of hex separated by {sep!r}")
    return b"".join(int(p, 16).to_bytes(width, "big") for p in parts)
