"""The Class attribute quotad puts in every Access-Accept (RFC 2865 §5.25).

The gateway echoes it in accounting, so an Accounting-Request names its contract, line and
session without an index lookup. Format: ``quotad1;<contract-id>;<msisdn>;<session-id>``.
Provisioning refuses ids containing ``;``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_PREFIX = b"quotad1;"
# Class is one attribute (253 octets) holding the prefix, a contract id and an MSISDN (64 octets
# each at most) and the session id: a longer Acct-Session-Id would not fit.
MAX_SESSION_ID_OCTETS = 96


@dataclass(frozen=True, slots=True)
class ClassInfo:
    contract_id: str
    msisdn: str
    session_id: str


def session_id(acct_session_id: str) -> str:
    """The id quotad keeps a gateway's session under: its Acct-Session-Id, or, when that is longer
    than fits in Class, a digest of it (the same for every report that carries the same id)."""
    raw = acct_session_id.encode()
    if len(raw) <= MAX_SESSION_ID_OCTETS:
        return acct_session_id
    return "h" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def encode(contract_id: str, msisdn: str, session_id: str) -> bytes:
    return _PREFIX + f"{contract_id};{msisdn};{session_id}".encode()


def decode(value: bytes | None) -> ClassInfo | None:
    """Parse a Class value; None if absent or not ours (another server's Class is ignored)."""
    if not value or not value.startswith(_PREFIX):
        return None
    # The session id may hold ';' (a gateway's Acct-Session-Id); contract ids and MSISDNs never do.
    parts = value[len(_PREFIX):].decode("utf-8", "replace").split(";", 2)
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    return ClassInfo(parts[0], parts[1], parts[2])
