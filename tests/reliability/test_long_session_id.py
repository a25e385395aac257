"""A gateway's Acct-Session-Id may take a whole attribute (253 octets, RFC 2866 §5.5); quotad's
Class (contract, MSISDN and session id in one 253-octet attribute) cannot hold it as well. Found by
the signed-packet fuzzing in test_bad_input: such an Access-Request used to fail in the handler
after the attach was stored, so the gateway never got an answer (R-72, R-71)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from quotad.aaa import classattr, sessionid
from quotad.app import Daemon
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import (
    SECRET,
    T0,
    access_request,
    accounting_request,
    daemon_config,
    exchange,
    running_daemon,
)
from tests.integration.test_radius_e2e import provision, reply_of


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    async with running_daemon(daemon_config(redis_url)) as d:
        await provision(d.store)
        yield d


def _accounting(asid: bytes, status: int, octets: int, identifier: int, klass: bytes | None) -> tuple[bytes, bytes]:
    attrs = (rp.attr_int(rp.ACCT_STATUS_TYPE, status) + rp.attr(rp.ACCT_SESSION_ID, asid)
             + rp.attr(rp.CALLING_STATION_ID, b"819000000001") + rp.attr_int(rp.ACCT_INPUT_OCTETS, octets)
             + rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1])))
    if klass is not None:
        attrs += rp.attr(rp.CLASS, klass)
    return rp.encode_request(rp.ACCOUNTING_REQUEST, identifier, SECRET, attrs, message_authenticator=False)


@pytest.mark.parametrize("asid", [b"s" * 253, b"\xff" * 253],
                         ids=["ascii", "not utf-8"])
async def test_r72_longest_acct_session_id_is_answered_and_counted_on_one_session(daemon: Daemon, asid: bytes) -> None:
    """An Access-Request with a 253-octet Acct-Session-Id gets an Access-Accept whose Class fits;
    accounting for it, with the Class echoed or without it, counts on that one session (R-71)."""
    datagram, auth = access_request(extra=rp.attr(rp.ACCT_SESSION_ID, asid))
    accept = reply_of(await exchange(daemon.auth_port, datagram), auth)
    assert accept.code == rp.ACCESS_ACCEPT
    klass = accept.get(rp.CLASS)
    assert klass is not None
    info = classattr.decode(klass)
    assert info is not None
    assert info.session_id == sessionid.of_gateway("127.0.0.1", asid.decode("utf-8", "replace"))
    assert len(info.session_id) == 33
    for ident, (status, octets, echo) in enumerate([(1, 0, True), (3, 1_000_000, True), (3, 3_000_000, False)]):
        req, req_auth = _accounting(asid, status, octets, 10 + ident, klass if echo else None)
        assert reply_of(await exchange(daemon.acct_port, req), req_auth).code == rp.ACCOUNTING_RESPONSE
    sessions = await daemon.store.live_sessions(LineRef("fam", "819000000001"))
    assert [s.session_id for s in sessions] == [info.session_id]
    view = await daemon.store.views.contract_view("fam", T0)
    line = next(ln for ln in view.lines if ln.msisdn == "819000000001")
    assert line.held == 10_000_000 - 3_000_000  # cumulative: the second interim replaces the first


async def test_r71_short_acct_session_id_kept_as_is(daemon: Daemon) -> None:
    """An id that fits in Class beside its gateway's name is kept readable: "<gateway>/<id>"."""
    asid = "k" * (classattr.MAX_SESSION_ID_OCTETS - len("127.0.0.1/"))
    datagram, auth = access_request(extra=rp.attr(rp.ACCT_SESSION_ID, asid.encode()))
    accept = reply_of(await exchange(daemon.auth_port, datagram), auth)
    info = classattr.decode(accept.get(rp.CLASS))
    assert info is not None and info.session_id == "127.0.0.1/" + asid
    req, req_auth = accounting_request(asid, 1, klass=accept.get(rp.CLASS))
    assert reply_of(await exchange(daemon.acct_port, req), req_auth).code == rp.ACCOUNTING_RESPONSE
