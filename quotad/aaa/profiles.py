"""Speed profiles → the RADIUS attributes sent to the gateway (R-20).

The attribute templates come from config (``[profiles.NAME].attributes``: dictionary name →
value), so an operator can fit any gateway's vendor attributes. They are encoded once at
startup; per packet the pre-encoded bytes are copied into the reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from quotad.config import ProfileSettings
from quotad.radius.dictionary import Dictionary, DictionaryError


@dataclass(frozen=True, slots=True)
class EncodedProfile:
    name: str
    down_bps: int
    up_bps: int
    attributes: bytes


class ProfileError(ValueError):
    def __init__(self, key: str, reason: str):
        self.key = key
        super().__init__(f"{key}: {reason}")


def encode_profiles(profiles: dict[str, ProfileSettings], dictionary: Dictionary) -> dict[str, EncodedProfile]:
    """Encode every profile's attribute template; a bad name or value raises ProfileError(key, reason)."""
    encoded: dict[str, EncodedProfile] = {}
    for name, settings in profiles.items():
        parts: list[bytes] = []
        for attr_name, value in settings.attributes.items():
            try:
                parts.append(dictionary.encode(attr_name, value))
            except DictionaryError as exc:
                raise ProfileError(f"profiles.{name}.attributes.{attr_name}", str(exc)) from exc
        encoded[name] = EncodedProfile(name, settings.down_bps, settings.up_bps, b"".join(parts))
    return encoded
