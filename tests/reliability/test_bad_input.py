"""Bad input at the RADIUS edge, against a real daemon over real UDP (R-70, R-72).

Table tests for each malformation the RFCs name (RFC 2865 §3, §5; RFC 3579 §3.2; RFC 5080 §2.2.2)
and the BlastRADIUS rules (CVE-2024-3596), then hypothesis fuzzing of the UDP edge: random and
mutated datagrams never crash the server, each is counted exactly once on /metrics, and the server
answers a good request after each; and properly signed packets with random attributes reach the
handlers, which answer every one (no input makes a handler fail).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotad.quota.embedded import EmbeddedRedis
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import SECRET, T0, access_request, accounting_request, daemon_config
from tests.integration.test_radius_e2e import provision
from tests.reliability.helpers import ThreadedDaemon, sample, scrape, udp_exchange

DROP_REASONS = ("unknown_client", "malformed", "wrong_code", "no_message_authenticator", "bad_authenticator",
                "overload", "no_reply", "duplicate", "proxy_state", "not_ready")
CAUSES = ("short", "length", "attribute")


@dataclass
class Edge:
    threaded: ThreadedDaemon
    daemon: Any
    klass: bytes  # the Class of a live session of 819000000001

    def outcomes(self) -> dict[str, float]:
        """Every way a request can end, from /metrics: drops by reason, malformed by cause, answers."""
        samples = scrape(self.daemon.http_port)
        out = {f"drop:{r}": sample(samples, "quotad_radius_dropped_total", reason=r) for r in DROP_REASONS}
        out |= {f"cause:{c}": sample(samples, "quotad_radius_malformed_total", cause=c) for c in CAUSES}
        for kind, outcome in (("access", "accept"), ("access", "reject"), ("accounting", "stored"),
                              ("accounting", "unknown_line"), ("accounting", "nas_on_off"), ("status", "ready")):
            out[f"{kind}:{outcome}"] = sample(samples, "quotad_radius_requests_total", kind=kind, outcome=outcome)
        return out

    def delta(self, before: dict[str, float]) -> dict[str, float]:
        after = self.outcomes()
        return {k: after[k] - before[k] for k in after if after[k] != before[k]}


@pytest.fixture(scope="module")
def edge(redis_server: EmbeddedRedis) -> Iterator[Edge]:
    client = sync_redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    threaded = ThreadedDaemon(daemon_config(redis_server.url), T0)
    with threaded as daemon:
        threaded.run(provision(daemon.store))
        datagram, _ = access_request(identifier=200, extra=rp.attr(rp.ACCT_SESSION_ID, b"edge-1"))
        accept = rp.decode(udp_exchange(daemon.auth_port, datagram) or b"")
        assert accept.code == rp.ACCESS_ACCEPT
        klass = accept.get(rp.CLASS)
        assert klass is not None
        yield Edge(threaded, daemon, klass)


def good_request_answered(edge: Edge) -> None:
    """The server goes on: a fresh, valid Access-Request is accepted and its reply verifies."""
    authenticator = os.urandom(16)
    attrs = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.pap_attr(b"iij", SECRET, authenticator)
             + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp") + rp.attr(rp.CALLING_STATION_ID, b"819000000002"))
    datagram, auth = rp.encode_request(rp.ACCESS_REQUEST, 77, SECRET, attrs, authenticator=authenticator)
    raw = udp_exchange(edge.daemon.auth_port, datagram, timeout=3.0, want_id=77)
    assert raw is not None, "the server stopped answering"
    reply = rp.decode(raw)
    assert reply.code == rp.ACCESS_ACCEPT
    assert rp.verify_response_authenticator(reply, auth, SECRET)


def verified_reply(raw: bytes | None, request_auth: bytes) -> rp.Packet:
    assert raw is not None, "no reply"
    pkt = rp.decode(raw)
    assert rp.verify_response_authenticator(pkt, request_auth, SECRET)
    if pkt.code in (rp.ACCESS_ACCEPT, rp.ACCESS_REJECT):
        assert pkt.attrs[0][0] == rp.MESSAGE_AUTHENTICATOR, "BlastRADIUS: Message-Authenticator first"
        assert rp.verify_message_authenticator(pkt, SECRET, request_auth) is True
    return pkt


# --- table tests ---------------------------------------------------------------------------------


def _hdr(code: int, length: int, identifier: int = 1) -> bytes:
    return bytes([code, identifier]) + length.to_bytes(2, "big") + bytes(range(16))


def _raw(attrs: bytes, code: int = rp.ACCESS_REQUEST) -> bytes:
    return _hdr(code, 20 + len(attrs)) + attrs


def _signed(extra: bytes = b"", message_authenticator: bool = True) -> bytes:
    return access_request(identifier=9, extra=extra, message_authenticator=message_authenticator)[0]


def _with_second_ma() -> bytes:
    """A valid request with a second Message-Authenticator appended (RFC 3579 §3.2: at most one)."""
    datagram = _signed()
    extra = bytes([rp.MESSAGE_AUTHENTICATOR, 18]) + datagram[22:38]
    body = datagram[20:] + extra
    return datagram[:2] + (20 + len(body)).to_bytes(2, "big") + datagram[4:20] + body


def _forged_ma() -> bytes:
    datagram = _signed()
    return datagram[:22] + bytes(16) + datagram[38:]


def _short_ma() -> bytes:
    datagram = _signed(message_authenticator=False)
    body = datagram[20:] + bytes([rp.MESSAGE_AUTHENTICATOR, 17]) + bytes(15)
    return datagram[:2] + (20 + len(body)).to_bytes(2, "big") + datagram[4:20] + body


def _proxy_states(total: int) -> bytes:
    """Proxy-State attributes whose values and headers take ``total`` octets on the wire."""
    out = b""
    n = 0
    while total - len(out) > 255:
        out += rp.attr(rp.PROXY_STATE, bytes([n]) * 253)
        n += 1
    rest = total - len(out)
    assert rest >= 3
    return out + rp.attr(rp.PROXY_STATE, bytes([n]) * (rest - 2))


DROPS: list[tuple[str, Callable[[], bytes], str, str | None]] = [
    ("attribute length 0", lambda: _raw(bytes([rp.USER_NAME, 0]) + b"abcd"), "malformed", "attribute"),
    ("attribute length 1", lambda: _raw(bytes([rp.USER_NAME, 1]) + b"abcd"), "malformed", "attribute"),
    ("attribute past the packet end", lambda: _raw(bytes([rp.USER_NAME, 40]) + b"abcd"), "malformed", "attribute"),
    ("attribute header cut by Length", lambda: _raw(rp.attr(rp.USER_NAME, b"ab") + b"\x01"), "malformed",
     "attribute"),
    ("packet of 19 octets", lambda: _signed()[:19], "malformed", "short"),
    ("empty datagram", lambda: b"", "malformed", "short"),
    ("Length field 19", lambda: _hdr(rp.ACCESS_REQUEST, 19), "malformed", "length"),
    ("Length field over 4096", lambda: _raw(bytes(4080)), "malformed", "length"),
    ("datagram of 5000 octets", lambda: _hdr(rp.ACCESS_REQUEST, 5000) + bytes(4980), "malformed", "length"),
    ("Length larger than the datagram", lambda: (lambda d: d[:2] + (len(d) + 1).to_bytes(2, "big") + d[4:])(_signed()),
     "malformed", "length"),
    ("code 0", lambda: _raw(b"", code=0), "wrong_code", None),
    ("code 99", lambda: _raw(b"", code=99), "wrong_code", None),
    ("code 255", lambda: _raw(b"", code=255), "wrong_code", None),
    ("Status-Server without Message-Authenticator",
     lambda: rp.encode_request(rp.STATUS_SERVER, 3, SECRET, message_authenticator=False)[0],
     "no_message_authenticator", None),
    ("Status-Server with a forged Message-Authenticator",
     lambda: (lambda d: d[:22] + bytes(16) + d[38:])(rp.encode_request(rp.STATUS_SERVER, 3, SECRET)[0]),
     "bad_authenticator", None),
    ("Status-Server under another secret", lambda: rp.encode_request(rp.STATUS_SERVER, 3, b"other")[0],
     "bad_authenticator", None),
    ("Accounting-Request on the auth port", lambda: accounting_request("x", 1)[0], "wrong_code", None),
    ("CoA-Request on the auth port", lambda: rp.encode_request(rp.COA_REQUEST, 3, SECRET)[0], "wrong_code", None),
    ("duplicate Message-Authenticator", _with_second_ma, "bad_authenticator", None),
    ("Message-Authenticator of 15 octets", _short_ma, "bad_authenticator", None),
    ("Proxy-State flood (2049 octets)", lambda: _signed(_proxy_states(2049)), "proxy_state", None),
    ("BlastRADIUS: no Message-Authenticator", lambda: _signed(message_authenticator=False),
     "no_message_authenticator", None),
    ("BlastRADIUS: forged Message-Authenticator", _forged_ma, "bad_authenticator", None),
]


@pytest.mark.parametrize(("datagram", "reason", "cause"), [pytest.param(d, r, c, id=i) for i, d, r, c in DROPS])
def test_r72_malformed_or_unauthentic_dropped_counted_by_reason(
    edge: Edge, datagram: Callable[[], bytes], reason: str, cause: str | None
) -> None:
    """R-72/R-70: dropped without an answer, counted once under exactly one reason (and, when
    malformed, one cause) on /metrics; the next good request is answered."""
    before = edge.outcomes()
    assert udp_exchange(edge.daemon.auth_port, datagram(), timeout=0.3) is None
    expected = {f"drop:{reason}": 1.0}
    if cause is not None:
        expected[f"cause:{cause}"] = 1.0
    assert edge.delta(before) == expected
    good_request_answered(edge)


def test_r72_accounting_with_bad_authenticator_or_length_past_datagram(edge: Edge) -> None:
    before = edge.outcomes()
    req, _ = accounting_request("acct-bad", 3, 100)
    assert udp_exchange(edge.daemon.acct_port, req[:4] + bytes(16) + req[20:], timeout=0.3) is None
    assert udp_exchange(edge.daemon.acct_port, req[:-1], timeout=0.3) is None
    assert edge.delta(before) == {"drop:bad_authenticator": 1.0, "drop:malformed": 1.0, "cause:length": 1.0}


ANSWERED: list[tuple[str, Callable[[], tuple[bytes, bytes]]]] = [
    ("trailing octets beyond Length ignored",
     lambda: (lambda d, a: (d + b"\xff" * 100, a))(*access_request(identifier=21))),
    ("unknown vendor attribute passed over",
     lambda: access_request(identifier=22,
                            extra=rp.attr_vsa(9999, 1, b"x" * 20) + rp.attr_vsa(rp.VENDOR_3GPP, 250, b"?"))),
    ("Vendor-Specific with a broken inner layout passed over",
     lambda: access_request(identifier=23, extra=rp.attr(rp.VENDOR_SPECIFIC, (9999).to_bytes(4, "big") + b"\x01\x00"))),
    ("unknown attribute types passed over",
     lambda: access_request(identifier=24, extra=rp.attr(241, b"\x01\x02") + rp.attr(255, b"") + rp.attr(192, b"z"))),
    ("empty attribute values", lambda: access_request(identifier=25, extra=rp.attr(rp.NAS_IDENTIFIER, b""))),
]


@pytest.mark.parametrize("build", [pytest.param(b, id=i) for i, b in ANSWERED])
def test_r72_tolerated_input_is_answered(edge: Edge, build: Callable[[], tuple[bytes, bytes]]) -> None:
    """RFC 2865 §3/§5: octets past Length are padding; attributes a server does not know are
    passed over. Such requests are answered as if they were not there."""
    datagram, auth = build()
    before = edge.outcomes()
    reply = verified_reply(udp_exchange(edge.daemon.auth_port, datagram, timeout=3.0), auth)
    assert reply.code == rp.ACCESS_ACCEPT
    assert edge.delta(before) == {"access:accept": 1.0}


@pytest.mark.parametrize(("port", "code"), [("auth", rp.ACCESS_ACCEPT), ("acct", rp.ACCOUNTING_RESPONSE)])
def test_r72_status_server_answered_and_counted_once(edge: Edge, port: str, code: int) -> None:
    """A Status-Server (RFC 5997) with a valid Message-Authenticator is answered on either port and
    counted once, as status/ready, and nowhere else on /metrics."""
    datagram, auth = rp.encode_request(rp.STATUS_SERVER, 33, SECRET)
    before = edge.outcomes()
    raw = udp_exchange(edge.daemon.auth_port if port == "auth" else edge.daemon.acct_port, datagram, timeout=3.0)
    assert raw is not None
    reply = rp.decode(raw)
    assert (reply.code, reply.identifier) == (code, 33)
    assert rp.verify_response_authenticator(reply, auth, SECRET)
    assert rp.verify_message_authenticator(reply, SECRET, auth, request_code=rp.STATUS_SERVER) is True
    assert edge.delta(before) == {"status:ready": 1.0}


def test_r70_proxy_state_up_to_the_bound_is_echoed_in_order(edge: Edge) -> None:
    """2048 octets of Proxy-State (the bound) are copied back, in order, into a reply that fits."""
    states = _proxy_states(2048)
    datagram, auth = access_request(identifier=30, extra=states)
    reply = verified_reply(udp_exchange(edge.daemon.auth_port, datagram, timeout=3.0), auth)
    assert reply.code == rp.ACCESS_ACCEPT
    assert b"".join(rp.attr(rp.PROXY_STATE, v) for v in reply.get_all(rp.PROXY_STATE)) == states


@pytest.mark.parametrize(("password", "code"), [(b"iij", rp.ACCESS_ACCEPT), (b"wrong", rp.ACCESS_REJECT)])
def test_r70_blastradius_every_access_reply_carries_message_authenticator_first(
    edge: Edge, password: bytes, code: int
) -> None:
    """CVE-2024-3596: Access-Accept and Access-Reject alike start with a valid Message-Authenticator,
    so an attacker cannot forge one by an MD5 chosen-prefix collision on the Response Authenticator."""
    datagram, auth = access_request(identifier=31, password=password)
    raw = udp_exchange(edge.daemon.auth_port, datagram, timeout=3.0)
    reply = verified_reply(raw, auth)
    assert reply.code == code
    assert raw is not None and raw[20:22] == bytes([rp.MESSAGE_AUTHENTICATOR, 18])


# --- fuzzing the UDP edge ------------------------------------------------------------------------

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
FUZZ_EDGE = settings(FUZZ, max_examples=40)  # each example waits for /metrics: fewer, same variety


def _one_outcome(edge: Edge, before: dict[str, float], extra_answers: int) -> dict[str, float]:
    """Wait until the datagram (and ``extra_answers`` good requests) have each been counted."""
    import time

    deadline = time.monotonic() + 3.0
    while True:
        delta = edge.delta(before)
        counted = sum(v for k, v in delta.items() if not k.startswith("cause:"))
        if counted >= 1 + extra_answers or time.monotonic() > deadline:
            return delta
        time.sleep(0.01)


@FUZZ_EDGE
@given(data=st.binary(max_size=4200))
def test_r72_random_datagrams_dropped_counted_once_server_goes_on(edge: Edge, data: bytes) -> None:
    """Random octets: each is dropped and counted exactly once (malformed ones also by cause); a good
    request right after is answered (R-72: no input crashes the server)."""
    before = edge.outcomes()
    with_socket = udp_exchange(edge.daemon.auth_port, data, timeout=0.05)
    assert with_socket is None
    good_request_answered(edge)
    delta = _one_outcome(edge, before, extra_answers=1)
    drops = {k: v for k, v in delta.items() if k.startswith("drop:")}
    assert sum(drops.values()) == 1, delta
    causes = {k: v for k, v in delta.items() if k.startswith("cause:")}
    assert sum(causes.values()) == drops.get("drop:malformed", 0), delta
    assert delta.get("access:accept") == 1, delta


@FUZZ_EDGE
@given(
    edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 400),
    grow=st.binary(max_size=40),
)
def test_r72_mutated_requests_counted_once_server_goes_on(
    edge: Edge, edits: list[tuple[int, int]], cut: int, grow: bytes
) -> None:
    """A valid Access-Request with octets changed, cut or appended: either dropped and counted once,
    or (when the change left it valid, e.g. only padding past Length) answered; never both, never
    neither; and the server answers the next good request."""
    datagram = bytearray(access_request(identifier=40, extra=rp.attr(rp.NAS_IDENTIFIER, os.urandom(8)))[0])
    for pos, value in edits:
        if pos < len(datagram):
            datagram[pos] = value
    mutated = bytes(datagram[: max(cut, 0)] if cut < len(datagram) else datagram) + grow
    before = edge.outcomes()
    udp_exchange(edge.daemon.auth_port, mutated, timeout=0.05)
    good_request_answered(edge)
    delta = _one_outcome(edge, before, extra_answers=1)
    counted = sum(v for k, v in delta.items() if not k.startswith("cause:"))
    assert counted == 2, delta  # the mutated datagram once, the good request once
    causes = sum(v for k, v in delta.items() if k.startswith("cause:"))
    assert causes == delta.get("drop:malformed", 0), delta


# --- signed packets with random attributes reach the handlers: every one is answered -----------------

_TYPES = [rp.USER_NAME, rp.USER_PASSWORD, rp.CHAP_PASSWORD, rp.CHAP_CHALLENGE, rp.NAS_IP_ADDRESS, rp.SERVICE_TYPE,
          rp.FRAMED_IP_ADDRESS, rp.CLASS, rp.CALLED_STATION_ID, rp.CALLING_STATION_ID, rp.ACCT_SESSION_ID,
          rp.ACCT_STATUS_TYPE, rp.ACCT_INPUT_OCTETS, rp.ACCT_OUTPUT_OCTETS, rp.ACCT_INPUT_GIGAWORDS,
          rp.ACCT_OUTPUT_GIGAWORDS, rp.PROXY_STATE, rp.ACCT_MULTI_SESSION_ID, rp.EVENT_TIMESTAMP, 0, 200]
_TGPP = [rp.TGPP_IMSI, rp.TGPP_SGSN_MCC_MNC, rp.TGPP_RAT_TYPE, rp.TGPP_IMEISV, rp.TGPP_CHARGING_ID, 99]
_PLAUSIBLE = [b"mio@iij", b"iij", b"iijmio.jp", b"IIJMIO.JP", b"819000000001", b"819000000002", b"440100000000001",
              b"44010", b"\x00\x00\x00\x01", b"\x00\x00\x00\x03", b"\xff\xff\xff\xff", b"\x7f\x00\x00\x01", b"\x06",
              b"quotad1;fam;819000000001;edge-1", b"quotad1;fam;;", b"quotad1;;;", b"quotad1;nope;1;2",
              b"quotad1;fam;819000000001;" + b"s" * 200, b"s" * 253, "ユーザー".encode(), b"\xff\xfe{c:fam}"]


def _value(kind: str) -> st.SearchStrategy[bytes]:
    limit = rp.MAX_VALUE if kind == "attr" else rp.MAX_VSA_VALUE
    return st.one_of(st.sampled_from([v for v in _PLAUSIBLE if len(v) <= limit]), st.binary(max_size=limit))


_attribute = st.one_of(
    st.tuples(st.sampled_from(_TYPES), _value("attr")).map(lambda tv: rp.attr(*tv)),
    st.tuples(st.sampled_from(_TGPP), _value("vsa")).map(lambda sv: rp.attr_vsa(rp.VENDOR_3GPP, *sv)),
)


def _fits(attrs: list[bytes]) -> bool:
    proxy = sum(len(a) for a in attrs if a[0] == rp.PROXY_STATE)
    return sum(len(a) for a in attrs) <= 4096 - 38 and proxy <= 2048


@FUZZ
@given(attrs=st.lists(_attribute, max_size=14).filter(_fits), base=st.booleans())
def test_r72_signed_random_access_requests_all_answered(edge: Edge, attrs: list[bytes], base: bool) -> None:
    """An authentic Access-Request (valid Message-Authenticator) with any attributes is answered
    with an Access-Accept or Access-Reject that verifies and echoes its Proxy-States: no attribute
    value makes the handler fail (which would leave the gateway without an answer)."""
    authenticator = os.urandom(16)
    prefix = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.pap_attr(b"iij", SECRET, authenticator)
              + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp")) if base else b""
    body = prefix + b"".join(attrs)
    if len(body) > 4096 - 38:
        body = b"".join(attrs)
    datagram, auth = rp.encode_request(rp.ACCESS_REQUEST, 50, SECRET, body, authenticator=authenticator)
    reply = verified_reply(udp_exchange(edge.daemon.auth_port, datagram, timeout=3.0, want_id=50), auth)
    assert reply.code in (rp.ACCESS_ACCEPT, rp.ACCESS_REJECT)
    sent = rp.decode(datagram)
    assert reply.get_all(rp.PROXY_STATE) == sent.get_all(rp.PROXY_STATE)


@FUZZ
@given(attrs=st.lists(_attribute, max_size=14).filter(_fits), status=st.sampled_from([1, 2, 3, 7, 8, 0, 15, 2**32 - 1]),
       with_class=st.booleans())
def test_r72_signed_random_accounting_requests_all_answered(
    edge: Edge, attrs: list[bytes], status: int, with_class: bool
) -> None:
    """An authentic Accounting-Request with any attributes is answered with an Accounting-Response
    (stored, or acknowledged as unknown): no value makes the handler fail."""
    head = rp.attr_int(rp.ACCT_STATUS_TYPE, status) + rp.attr(rp.ACCT_SESSION_ID, b"fz-" + os.urandom(4).hex().encode())
    if with_class:
        head += rp.attr(rp.CLASS, edge.klass)
    body = head + b"".join(attrs)
    if len(body) > 4096 - 20:
        body = b"".join(attrs)
    datagram, auth = rp.encode_request(rp.ACCOUNTING_REQUEST, 51, SECRET, body, message_authenticator=False)
    reply = verified_reply(udp_exchange(edge.daemon.acct_port, datagram, timeout=3.0, want_id=51), auth)
    assert reply.code == rp.ACCOUNTING_RESPONSE


def test_r72_a_thousand_random_datagrams_then_service(edge: Edge) -> None:
    """A burst of 1000 random datagrams (seeded) at both ports: every one counted, none answered,
    the listeners still up."""
    rng = random.Random(8)
    before = edge.outcomes()
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(1000):
            data = rng.randbytes(rng.choice([0, 5, 19, 20, 21, 64, 400, 4096, 4500]))
            sock.sendto(data, ("127.0.0.1", edge.daemon.auth_port if i % 2 else edge.daemon.acct_port))
    good_request_answered(edge)
    delta = _one_outcome(edge, before, extra_answers=1000)
    assert sum(v for k, v in delta.items() if k.startswith("drop:")) == 1000, delta
    assert delta.get("access:accept") == 1
