"""aaa.access.AccessHandler with an in-memory store: the reject order its docstring promises, what
an Access-Accept carries, re-authorization without credentials, and a Redis failure (no answer)."""

from __future__ import annotations

import hashlib

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from quotad import app
from quotad.aaa import classattr
from quotad.aaa.access import AccessHandler, Apn
from quotad.aaa.speed import Push, SpeedChanges
from quotad.config import Config
from quotad.quota.model import LineRef
from quotad.radius import packet as rp
from quotad.radius.clients import Client
from tests.unit.fakestore import MB, FakeStore

SECRET = b"testing123"
CLIENT = Client("gw", SECRET)
LINE = LineRef("c1", "819000000001")
IMSI = "440100000000001"
AUTH = bytes(range(16))
NOW = 1_790_000_000.0


def request(user: bytes = b"mio@iij", password: bytes | None = b"iij", apn: bytes = b"iijmio.jp",
            msisdn: str = LINE.msisdn, visited: bytes | None = None, extra: bytes = b"") -> rp.Packet:
    attrs = rp.attr(rp.USER_NAME, user) + rp.attr(rp.CALLED_STATION_ID, apn)
    attrs += rp.attr(rp.CALLING_STATION_ID, msisdn.encode()) + rp.attr(rp.NAS_IP_ADDRESS, bytes([10, 0, 0, 1]))
    if password is not None:
        attrs += rp.pap_attr(password, SECRET, AUTH)
    if visited is not None:
        attrs += rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC, visited)
    datagram, _ = rp.encode_request(rp.ACCESS_REQUEST, 7, SECRET, attrs + extra, authenticator=AUTH)
    return rp.decode(datagram)


def handler(store: FakeStore) -> tuple[AccessHandler, list[tuple[LineRef, Push]]]:
    cfg = Config()
    pushed: list[tuple[LineRef, Push]] = []
    speeds = SpeedChanges(store, app.catalog_from(cfg), lambda ref, push: pushed.append((ref, push)))
    apns = [Apn.from_settings(a) for a in cfg.apns]
    return AccessHandler(apns, store, speeds, app.profiles_from(cfg), lambda: NOW), pushed


async def answer(h: AccessHandler, pkt: rp.Packet) -> rp.Packet:
    raw = await h.handle(pkt, CLIENT)
    assert raw is not None
    reply = rp.decode(raw)
    assert rp.verify_response_authenticator(reply, AUTH, SECRET)
    return reply


def store_with_line(**kw: object) -> FakeStore:
    return FakeStore(lines={LINE.msisdn: LINE, IMSI: LINE}, **kw)  # type: ignore[arg-type]


# Each request fails the check before its own and every check after it: the answer names the first.
ORDER = [
    ("unknown APN first", dict(apn=b"other.jp", user=b"x", password=b"bad", visited=b"31026", msisdn="0"),
     "Unknown APN", []),
    ("then credentials", dict(user=b"x", password=b"bad", visited=b"31026", msisdn="0"),
     "Authentication failed", []),
    ("a wrong password alone", dict(password=b"bad"), "Authentication failed", []),
    ("then roaming", dict(visited=b"31026", msisdn="0"), "Roaming is not allowed on this APN", []),
    ("then the SIM", dict(msisdn="0"), "Unknown SIM", ["find_line"]),
]


@pytest.mark.parametrize(("case", "kw", "message", "calls"), ORDER, ids=[c[0] for c in ORDER])
async def test_reject_order(case: str, kw: dict, message: str, calls: list[str]) -> None:
    """R-1, R-4, R-2 in that order; nothing asks the store before the SIM is looked up."""
    store = store_with_line()
    h, _ = handler(store)
    reply = await answer(h, request(**kw))
    assert (reply.code, reply.get(rp.REPLY_MESSAGE)) == (rp.ACCESS_REJECT, message.encode())
    assert store.calls == calls


@pytest.mark.parametrize(("reason", "message"), [
    ("suspended", "Line is suspended"), ("card_replaced", "SIM card has been replaced"),
    ("identity_unverified", "Identity not verified"), ("no_address", "No address available"),
    ("something new", "Line is not active"),
])
async def test_the_store_refusal_is_the_answer(reason: str, message: str) -> None:
    """R-3 / R-50 / R-5: the attach script's reason becomes the Reply-Message; an unknown one is
    told as the line not being active."""
    store = store_with_line(refuse=reason)
    h, pushed = handler(store)
    reply = await answer(h, request())
    assert (reply.code, reply.get(rp.REPLY_MESSAGE)) == (rp.ACCESS_REJECT, message.encode())
    assert (store.calls, pushed) == (["find_line", "attach"], [])


async def test_a_home_network_is_not_roaming() -> None:
    reply = await answer(handler(store_with_line())[0], request(visited=b"44010"))
    assert reply.code == rp.ACCESS_ACCEPT


async def test_accept_carries_class_profile_grant_and_address() -> None:
    store = store_with_line()
    h, pushed = handler(store)
    reply = await answer(h, request(extra=rp.attr(rp.ACCT_SESSION_ID, b"s-1")))
    assert reply.code == rp.ACCESS_ACCEPT
    info = classattr.decode(reply.get(rp.CLASS))
    assert info is not None and (info.contract_id, info.msisdn, info.session_id) == ("c1", LINE.msisdn, "10.0.0.1/s-1")
    assert reply.get(rp.FILTER_ID) == b"high-lte"
    assert reply.vsa(rp.VENDOR_QUOTAD, 1) == (10 * MB).to_bytes(8, "big")
    assert reply.get(rp.FRAMED_IP_ADDRESS) == bytes([100, 64, 0, 7])
    assert (reply.get_int(rp.SESSION_TIMEOUT), reply.get_int(rp.ACCT_INTERIM_INTERVAL)) == (86400, 600)
    [req] = store.attaches
    assert (req.ref, req.session_id, req.gateway, req.acct_session_id, req.slot, req.now) == (
        LINE, "10.0.0.1/s-1", "10.0.0.1", "s-1", "", NOW)
    assert (store.calls, pushed) == (["find_line", "attach"], [])


async def test_chap_with_a_challenge_is_accepted() -> None:
    challenge = bytes(range(100, 116))
    chap = b"\x07" + hashlib.md5(b"\x07" + b"iij" + challenge).digest()
    pkt = request(password=None, extra=rp.attr(rp.CHAP_PASSWORD, chap) + rp.attr(rp.CHAP_CHALLENGE, challenge))
    assert (await answer(handler(store_with_line())[0], pkt)).code == rp.ACCESS_ACCEPT


async def test_a_speed_change_at_attach_is_pushed_to_the_other_sessions() -> None:
    """The line was low; the attach finds it may run high: the Accept says high-lte and the push
    leaves out the attaching session (aaa.speed's ``told``)."""
    store = store_with_line(speed="low")
    h, pushed = handler(store)
    reply = await answer(h, request(extra=rp.attr(rp.ACCT_SESSION_ID, b"s-2")))
    assert reply.get(rp.FILTER_ID) == b"high-lte"
    assert store.speed == "high"
    assert pushed == [(LINE, Push("high", with_grant=True, told="10.0.0.1/s-2"))]


def reauth(klass: bytes | None) -> rp.Packet:
    extra = rp.attr_int(rp.SERVICE_TYPE, 17) + (rp.attr(rp.CLASS, klass) if klass else b"")
    return request(password=None, extra=extra)


async def test_reauthorization_without_credentials_needs_a_live_session_on_that_gateway() -> None:
    """RFC 5176 §3.1: an Authorize-Only request without a password names a live session of the
    line on the same gateway, else it is refused (no_session) before any attach."""
    store = store_with_line()
    h, _ = handler(store)
    klass = classattr.encode("c1", LINE.msisdn, "10.0.0.1/s-1")
    refused = await answer(h, reauth(klass))
    assert (refused.code, refused.get(rp.REPLY_MESSAGE)) == (rp.ACCESS_REJECT, b"No such live session to re-authorize")
    assert store.calls == ["find_line", "is_live"]
    store.live.add((LINE, "10.0.0.1/s-1", "10.0.0.1"))
    accepted = await answer(h, reauth(klass))
    assert accepted.code == rp.ACCESS_ACCEPT
    assert [r.session_id for r in store.attaches] == ["10.0.0.1/s-1"]


async def test_reauthorization_without_credentials_or_session_is_refused() -> None:
    store = store_with_line()
    reply = await answer(handler(store)[0], reauth(None))
    assert reply.get(rp.REPLY_MESSAGE) == b"No such live session to re-authorize"
    assert store.calls == ["find_line"]


async def test_a_password_less_request_that_is_not_authorize_only_is_bad_credentials() -> None:
    reply = await answer(handler(store_with_line())[0], request(password=None))
    assert reply.get(rp.REPLY_MESSAGE) == b"Authentication failed"


async def test_a_redis_failure_sends_no_answer() -> None:
    """Nothing half-done is acknowledged: the gateway retries."""
    store = store_with_line(fail=RedisConnectionError("down"))
    h, _ = handler(store)
    assert await h.handle(request(), CLIENT) is None
