"""A re-authorization that changes nothing, answered from reads alone (issue 20).

Most Access-Requests are a live session asking again: it holds a slice, its speed is what it
was, and this process leased its address within a quarter lease (quota.renewals). attach.lua
then writes nothing and draws nothing, yet a script call costs Redis several times what the
three reads in it cost. So on a single Redis (the pipelining client), when this process noted
the session's address and generation, the store first reads what attach.lua reads (the
contract's, the line's and the session's fields) in one MULTI/EXEC, a snapshot of one instant as
a script sees it, and ``answer`` gives the script's reply when, from that snapshot, the script
would have changed nothing: the contract has this month's bundle and no bucket due to expire,
its start day has come; the line is active, its card is the request's, a voice line's holder is
verified, it has the coupon switch on and holds a slice (no draw, speed high: model.NOT_READ);
the session is the live one (with a slot: the slot's latest, not yet reported), its generation
set, its gateway address and IMSI unchanged, its expiry not due to be pushed back. Anything else
(a write, a refusal, a doubt) answers None and the attach script runs as before, so the answer
is always one the script would give at the instant of the reads.

Every condition here is one of attach.lua's (and _lib.lua's maintain): a change there must be
made here too; tests/integration/test_steady.py compares the two on states of every kind.
"""

from __future__ import annotations

from typing import Any

from quotad.quota.lua import AttachReply
from quotad.quota.model import NOT_READ, LineFacts
from quotad.quota.resp import encode_command

CONTRACT = ("plan", "bundle_month", "next_exp", "start", "identity")
LINE = ("status", "imsi", "coupon", "held", "voice", "speed")
SESSION = ("stopped", "nas", "imsi", "gen", "ttl_at", "rep")


def contract_read(contract_key: str) -> bytes:
    return encode_command(("HMGET", contract_key, *CONTRACT))


def line_read(line_key: str, slot: str) -> bytes:
    """The line's fields, and with a slot its latest session's id last."""
    return encode_command(("HMGET", line_key, *LINE, f"slot:{slot}") if slot else ("HMGET", line_key, *LINE))


def session_read(session_key: str) -> bytes:
    return encode_command(("HMGET", session_key, *SESSION))


def answer(snapshot: list[Any], now: int, month: int, today: str, slice_bytes: int, ttl: int, imsi: str,
           nas: str, sid: str, slot: str, expected_gen: str, check_identity: bool) -> AttachReply | None:
    """attach.lua's reply from the reads (``snapshot``: EXEC's reply to contract_read, line_read,
    session_read) when it would write nothing; None when it might, or would refuse. ``now`` is
    the script's clock (whole seconds), ``month`` its month key, ``imsi`` '' when absent."""
    contract, line, session = snapshot
    plan, bundle_month, next_exp, start, identity = contract
    if not plan or not bundle_month or int(bundle_month) < month or next_exp is None:
        return None  # no contract, or a bundle to grant, or its next expiry never noted
    if next_exp and now >= float(next_exp):
        return None  # a bucket to drop
    if start and start.decode() > today:
        return None  # refused: not started
    status, card, coupon, held, voice, speed = line[:6]
    if status != b"active" or coupon != b"1" or not held or int(held) < slice_bytes:
        return None  # refused, or a slice to draw, or a speed that may depend on the pool
    if imsi and (card is None or card.decode() != imsi):
        return None  # refused: another card
    if check_identity and voice == b"1" and identity != b"verified":
        return None  # refused: the holder's identity
    if slot and (line[6] is None or line[6].decode() != sid):
        return None  # the slot's latest session is another, or none
    stopped, s_nas, s_imsi, gen, ttl_at, rep = session
    if stopped != b"0" or not gen or ttl_at is None or (slot and rep is not None):
        return None  # a new session, a generation to write, or a slot's session that reported
    if s_nas is None or s_imsi is None or s_nas.decode() != nas or s_imsi.decode() != imsi:
        return None  # fields to update
    since = now - float(ttl_at)
    if since < 0 or since >= ttl / 48:
        return None  # its expiry to push back
    generation = gen.decode()
    facts = LineFacts(plan.decode(), "active", True, int(held), NOT_READ, NOT_READ, speed.decode() if speed else "")
    return AttachReply("ok", sid, 0, facts, generation, generation == expected_gen, False)
