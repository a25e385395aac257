"""Attributes quotad builds for replies and pushes, shared by access, accounting, session control
and the public-safety path: a leaf module, so that none of them imports another for a helper."""

from __future__ import annotations

from quotad.radius import packet as rp

GRANTED_OCTETS = 1  # Quotad-Granted-Octets, vendor 58813 (dictionary.quotad)


def granted_attr(held: int) -> bytes:
    """Quotad-Granted-Octets (integer64): what the SIM may use before it must ask again."""
    return rp.attr_vsa(rp.VENDOR_QUOTAD, GRANTED_OCTETS, max(held, 0).to_bytes(8, "big"))
