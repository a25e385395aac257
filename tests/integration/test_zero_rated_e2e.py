"""Zero-rated usage over the wire (R-23): accounting built by pyrad (the independent peer) with
the quotad exempt-octet VSAs; what they count is not debited, at high or at low speed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pyrad import packet as pp
from pyrad.dictionary import Dictionary as PyradDictionary

from quotad.app import Daemon
from quotad.radius import packet as rp
from quotad.radius.dictionary import default_dictionary_path
from tests.integration.daemon_fixture import (
    LINE,
    SECRET,
    T0,
    Gateway,
    access_request,
    exchange,
    mini_with_gateway,
)

MB = 1_000_000
GIGAWORD = 1 << 32
DICT = PyradDictionary(str(default_dictionary_path()))
DAY = "20261110"  # T0's Japan day


@pytest.fixture
async def setup(redis_url: str) -> AsyncIterator[tuple[Daemon, Gateway]]:
    async with mini_with_gateway(redis_url) as pair:
        yield pair


def pyrad_accounting(
    ident: int, klass: bytes, status: str, total: tuple[int, int], exempt: tuple[int, int]
) -> bytes:
    """An Accounting-Request from pyrad: cumulative totals and zero-rated parts, with gigawords."""
    req = pp.AcctPacket(code=pp.AccountingRequest, id=ident, secret=SECRET, dict=DICT)
    req["Acct-Status-Type"] = status
    req["Acct-Session-Id"] = "gw-1"
    req["Calling-Station-Id"] = LINE.msisdn
    req["NAS-IP-Address"] = "127.0.0.1"
    req["Class"] = klass
    req["Acct-Input-Octets"], req["Acct-Input-Gigawords"] = total[0] % GIGAWORD, total[0] // GIGAWORD
    req["Acct-Output-Octets"] = total[1]
    req["Quotad-Exempt-Input-Octets"] = exempt[0] % GIGAWORD
    req["Quotad-Exempt-Input-Gigawords"] = exempt[0] // GIGAWORD
    req["Quotad-Exempt-Output-Octets"] = exempt[1]
    return bytes(req.RequestPacket())


async def send(d: Daemon, datagram: bytes) -> None:
    raw = await exchange(d.acct_port, datagram)
    assert raw is not None and rp.decode(raw).code == rp.ACCOUNTING_RESPONSE


async def held_and_usage(d: Daemon) -> tuple[int, int, int]:
    assert d.store is not None
    view = await d.store.views.contract_view("mini", T0)
    (usage,) = await d.store.views.line_usage(LINE, [DAY])
    return view.lines[0].held, usage.high, usage.low


async def test_r23_zero_rated_octets_are_not_debited(setup: tuple[Daemon, Gateway]) -> None:
    """R-23: of each report's new octets, the zero-rated part (Quotad-Exempt-*-Octets, cumulative,
    with gigawords) is neither debited at high speed nor counted towards R-22 at low speed; a
    replayed report counts nothing (R-71)."""
    d, gateway = setup
    datagram, _ = access_request(msisdn=LINE.msisdn, extra=rp.attr(rp.ACCT_SESSION_ID, b"gw-1"))
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None
    klass = rp.decode(raw).get(rp.CLASS)
    assert klass is not None
    await send(d, pyrad_accounting(1, klass, "Start", (0, 0), (0, 0)))
    assert await held_and_usage(d) == (10 * MB, 0, 0)

    # 30 MB used, 25 MB of it zero-rated: 5 MB debited.
    interim = pyrad_accounting(2, klass, "Interim-Update", (20 * MB, 10 * MB), (15 * MB, 10 * MB))
    await send(d, interim)
    assert await held_and_usage(d) == (5 * MB, 5 * MB, 0)
    await send(d, pyrad_accounting(3, klass, "Interim-Update", (20 * MB, 10 * MB), (15 * MB, 10 * MB)))
    assert await held_and_usage(d) == (5 * MB, 5 * MB, 0)

    # 4 GiB + 2 MB more, the 4 GiB zero-rated (counted in gigawords on both sides): 2 MB debited.
    await send(d, pyrad_accounting(4, klass, "Interim-Update", (GIGAWORD + 22 * MB, 10 * MB),
                                   (GIGAWORD + 15 * MB, 10 * MB)))
    assert await held_and_usage(d) == (3 * MB, 7 * MB, 0)

    # At low speed (switch OFF, R-21) zero-rated usage does not count towards the 3-day limit.
    assert d.store is not None and d.sessions is not None
    await d.store.provisioning.set_coupon(LINE, False, T0)
    assert (await d.sessions.redecide(LINE))[0] == "low"
    assert (await gateway.next()).get(rp.FILTER_ID) == b"low"
    await send(d, pyrad_accounting(5, klass, "Interim-Update", (GIGAWORD + 42 * MB, 11 * MB),
                                   (GIGAWORD + 35 * MB, 10 * MB)))
    assert await held_and_usage(d) == (3 * MB, 7 * MB, 1 * MB)
    await send(d, pyrad_accounting(6, klass, "Stop", (GIGAWORD + 42 * MB, 11 * MB), (GIGAWORD + 35 * MB, 10 * MB)))
    assert await held_and_usage(d) == (3 * MB, 7 * MB, 1 * MB)
