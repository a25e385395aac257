"""RADIUS packet codes by name (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2, RFC 5997).

``Code`` is for display: logs and drop details name a code (``Code.name_of(40)`` →
"Disconnect-Request"); the codec and the hot path compare the plain ints of radius.packet, which
are defined from it, so there is one table.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    STATUS_SERVER = 12
    DISCONNECT_REQUEST = 40
    DISCONNECT_ACK = 41
    DISCONNECT_NAK = 42
    COA_REQUEST = 43
    COA_ACK = 44
    COA_NAK = 45

    def __str__(self) -> str:
        """The RFC's spelling: "Access-Request", "CoA-ACK"."""
        words = self.name.split("_")
        return "-".join(w if w in _UPPER else w.capitalize() for w in words).replace("Coa", "CoA")

    @classmethod
    def name_of(cls, code: int) -> str:
        """A code's name, or "code <n>" for one no RFC here defines (a gateway may send anything)."""
        try:
            return str(cls(code))
        except ValueError:
            return f"code {code}"


_UPPER = frozenset(("ACK", "NAK"))
