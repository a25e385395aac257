"""Small conversions between attribute values and the text the quota store keeps."""

from __future__ import annotations


def text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value else None


def ipv4_text(value: bytes | None) -> str:
    """Dotted quad of a 4-byte address attribute; "" when absent or malformed."""
    if value is None or len(value) != 4:
        return ""
    return f"{value[0]}.{value[1]}.{value[2]}.{value[3]}"


def ipv4_bytes(address: str) -> bytes:
    return bytes(map(int, address.split(".")))
