"""Who a session is: the gateway it runs on, and the gateway's name for it.

RFC 2866 makes Acct-Session-Id unique per NAS, not across NASes: two gateways numbering their
sessions "00000001" run two sessions. quotad keeps a session under ``<gateway>/<Acct-Session-Id>``
(digested when that does not fit in Class, classattr.session_id), and puts that id in the
Access-Accept's Class, so accounting that echoes Class names the same session whatever else it
carries. An Access-Request without Acct-Session-Id gets a new id of its own (``fresh``), never
reused: a SIM's next session never merges into its previous one.

The gateway is named by what it says of itself, the same in its Access-Requests, its accounting
and its Accounting-On/Off: NAS-IP-Address, else NAS-IPv6-Address, else NAS-Identifier; a packet
carrying none (RFC 2865 requires one) is named by the RADIUS client it came from.

An Access-Request that names no session has a slot, its gateway, SIM and APN: while the slot's
latest session is live and has had no accounting report, such a request is that session asking
again (a gateway's retry, or one that never sends accounting), not a new one, so it keeps its
address instead of taking one more at every attempt. Once the session has reported, the next
such request is a new session (quota/scripts/attach.lua).
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import re
import secrets

from quotad.aaa import classattr
from quotad.radius import packet as rp
from quotad.radius.clients import Client

NAS_IPV6_ADDRESS = 95
# A NAS-Identifier kept as it is in key names; anything else is digested.
_PLAIN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def gateway_of(pkt: rp.Packet, client: Client) -> str:
    """The gateway a request comes from, as quotad names it in session ids and key names."""
    v4 = pkt.get(rp.NAS_IP_ADDRESS)
    if v4 is not None and len(v4) == 4:
        return f"{v4[0]}.{v4[1]}.{v4[2]}.{v4[3]}"
    v6 = pkt.get(NAS_IPV6_ADDRESS)
    if v6 is not None and len(v6) == 16:
        return str(ipaddress.IPv6Address(v6))
    ident = pkt.get(rp.NAS_IDENTIFIER)
    if ident:
        return _named("id", ident)
    return _named("client", client.name.encode())


def _named(kind: str, raw: bytes) -> str:
    """A name fit for key names and hash tags (no braces, tabs or separators), or its digest."""
    text = raw.decode("utf-8", "replace")
    if _PLAIN.fullmatch(text):
        return f"{kind}:{text}"
    return f"{kind}:" + hashlib.blake2b(raw, digest_size=8).hexdigest()


def of_gateway(gateway: str, acct_session_id: str) -> str:
    """The session id of the gateway's Acct-Session-Id."""
    return classattr.session_id(f"{gateway}/{acct_session_id}")


def slot_of(gateway: str, sim: str, apn: str) -> str:
    """The slot of an Access-Request that names no session."""
    return hashlib.blake2b(f"{gateway}|{sim}|{apn}".encode(), digest_size=8).hexdigest()


# A random prefix per process (drawn again in a forked worker) and a counter: unique across
# processes and hosts, and cheaper than random bytes per request (every Access-Request naming no
# session takes one).
_prefix = ""
_count = itertools.count(1)


def _new_prefix() -> None:
    global _prefix, _count
    _prefix, _count = "a" + secrets.token_hex(6), itertools.count(1)


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)


def fresh() -> str:
    """A new session id for an attach that names no session: unique across processes and hosts."""
    return f"{_prefix}{next(_count):x}"
