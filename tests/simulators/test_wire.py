"""The simulated gateway's packets (issue 6), checked with quotad's own codec as the peer: PAP and
CHAP credentials, Message-Authenticator, the 3GPP attributes, counters with Gigawords (RFC 2869
§5.1), and RFC 5176 ACK/NAK with Error-Cause 503."""

from __future__ import annotations

from quotad.radius import packet as rp
from simulators import wire
from simulators.handset import Grant, Handset

NAS = wire.Nas(secret=b"s3cret")
HIGH = Grant("high-lte", 112_500_000, 37_500_000, 10_000_000, True, b"quotad1;c;m;s", "100.64.0.9")


def handset(**kw: object) -> Handset:
    return Handset("819000000042", "440100000000042", "3534900000000042", **kw)  # type: ignore[arg-type]


def test_pap_access_request_carries_the_3gpp_identity_and_verifies() -> None:
    raw, auth = wire.access_request(handset(rat="3g"), NAS, 7)
    pkt = rp.decode(raw)
    assert (pkt.code, pkt.identifier, pkt.attrs[0][0]) == (rp.ACCESS_REQUEST, 7, rp.MESSAGE_AUTHENTICATOR)
    assert rp.verify_message_authenticator(pkt, NAS.secret) is True
    hidden = pkt.get(rp.USER_PASSWORD)
    assert hidden is not None and rp.decrypt_password(hidden, NAS.secret, auth) == b"iij"
    assert pkt.get(rp.USER_NAME) == b"mio@iij" and pkt.get(rp.CALLED_STATION_ID) == b"iijmio.jp"
    assert pkt.get(rp.CALLING_STATION_ID) == b"819000000042"
    assert pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI) == b"440100000000042"
    assert pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_IMEISV) == b"3534900000000042"
    assert rp.tgpp_rat_type(pkt) == 1  # UTRAN
    assert pkt.get_int(rp.SERVICE_TYPE) == wire.SERVICE_FRAMED


def test_chap_reauthorization_is_authorize_only_with_the_session_id() -> None:
    h = handset(auth="chap")
    h.attach_sent(0.0)
    h.accepted(HIGH, 0.0)
    raw, _ = wire.access_request(h, NAS, 9, reauth=True)
    pkt = rp.decode(raw)
    chap, challenge = pkt.get(rp.CHAP_PASSWORD), pkt.get(rp.CHAP_CHALLENGE)
    assert chap is not None and challenge is not None and rp.check_chap(chap, challenge, b"iij")
    assert pkt.get(rp.USER_PASSWORD) is None
    assert pkt.get_int(rp.SERVICE_TYPE) == wire.SERVICE_AUTHORIZE_ONLY
    assert pkt.get(rp.ACCT_SESSION_ID) == b"819000000042-0001"
    assert rp.tgpp_rat_type(pkt) == 6  # EUTRAN


def test_accounting_counters_past_4_gib_use_gigawords() -> None:
    h = handset()
    h.attach_sent(0.0)
    h.accepted(HIGH, 100.0)
    h.octets_in, h.octets_out = 2**32 + 5, 3 * 2**32 + 7
    raw, _ = wire.accounting_request(h, NAS, 3, wire.ACCT_INTERIM, 160.0)
    pkt = rp.decode(raw)
    assert rp.verify_request_authenticator(pkt, NAS.secret)
    assert (pkt.get_int(rp.ACCT_INPUT_OCTETS), pkt.get_int(rp.ACCT_INPUT_GIGAWORDS)) == (5, 1)
    assert (pkt.get_int(rp.ACCT_OUTPUT_OCTETS), pkt.get_int(rp.ACCT_OUTPUT_GIGAWORDS)) == (7, 3)
    assert rp.octets64(pkt.get_int(rp.ACCT_INPUT_OCTETS), pkt.get_int(rp.ACCT_INPUT_GIGAWORDS)) == 2**32 + 5
    assert pkt.get(rp.CLASS) == b"quotad1;c;m;s" and pkt.get(rp.FRAMED_IP_ADDRESS) == bytes([100, 64, 0, 9])
    assert pkt.get_int(rp.ACCT_SESSION_TIME) == 60 and pkt.get_int(rp.ACCT_TERMINATE_CAUSE) is None


def test_grant_of_reads_profile_rate_slice_and_timers() -> None:
    attrs = b"".join((
        rp.attr_int(rp.SESSION_TIMEOUT, 3600), rp.attr_int(rp.ACCT_INTERIM_INTERVAL, 300),
        rp.attr(rp.CLASS, b"k"), rp.attr(rp.FILTER_ID, b"low"),
        rp.attr_vsa(rp.VENDOR_QUOTAD, wire.Q_SPEED_PROFILE, b"low"),
        rp.attr_vsa(rp.VENDOR_QUOTAD, wire.Q_RATE_DOWN, (200_000).to_bytes(4, "big")),
        rp.attr_vsa(rp.VENDOR_QUOTAD, wire.Q_RATE_UP, (200_000).to_bytes(4, "big")),
        rp.attr_vsa(rp.VENDOR_QUOTAD, wire.Q_GRANTED_OCTETS, (0).to_bytes(8, "big")),
    ))
    reply = rp.decode(rp.encode_response(rp.ACCESS_ACCEPT, 1, bytes(16), NAS.secret, attrs))
    grant = wire.grant_of(reply)
    assert grant == Grant("low", 200_000, 200_000, 0, False, b"k", None, 300, 3600)


def test_dynauth_nak_503_for_unknown_session_and_wrong_secret_discarded() -> None:
    body = rp.attr(rp.ACCT_SESSION_ID, b"nope") + rp.attr_int(rp.EVENT_TIMESTAMP, 1)
    raw, auth = rp.encode_request(rp.DISCONNECT_REQUEST, 5, NAS.secret, body)
    assert wire.parse_dynauth(raw, b"other-secret") is None
    request = wire.parse_dynauth(raw, NAS.secret)
    assert request is not None and (request.is_coa, request.session_id) == (False, "nope")
    reply = rp.decode(wire.dynauth_reply(request, False, NAS.secret, wire.ERROR_SESSION_NOT_FOUND))
    assert (reply.code, reply.identifier, reply.get_int(rp.ERROR_CAUSE)) == (rp.DISCONNECT_NAK, 5, 503)
    assert rp.verify_response_authenticator(reply, auth, NAS.secret)
    assert rp.verify_message_authenticator(reply, NAS.secret, auth) is True


def test_zero_rated_counters_and_rule() -> None:
    """R-23: the zero-rated part goes in Quotad-Exempt-*-Octets (with Gigawords), inside the Acct
    counters; the rule comes with the profile of an accept or CoA."""
    h = handset()
    h.attach_sent(0.0)
    h.accepted(Grant("low", 200_000, 200_000, 0, False, exempt_rule="zero-rated"), 0.0)
    h.start_acked()
    h.used(1000, 500, 2**32 + 3, 7)
    raw, _ = wire.accounting_request(h, NAS, 4, wire.ACCT_INTERIM, 10.0)
    pkt = rp.decode(raw)
    assert rp.octets64(pkt.get_int(rp.ACCT_OUTPUT_OCTETS), pkt.get_int(rp.ACCT_OUTPUT_GIGAWORDS)) == 2**32 + 1003
    exempt = {n: int.from_bytes(pkt.vsa(rp.VENDOR_QUOTAD, n) or b"", "big") for n in (6, 7, 9, 10)}
    assert exempt == {wire.Q_EXEMPT_IN: 7, wire.Q_EXEMPT_OUT: 3, wire.Q_EXEMPT_IN_GIGAWORDS: 0,
                      wire.Q_EXEMPT_OUT_GIGAWORDS: 1}
    high = rp.attr_vsa(rp.VENDOR_QUOTAD, wire.Q_SPEED_PROFILE, b"high-lte")
    coa = rp.decode(rp.encode_request(rp.COA_REQUEST, 1, NAS.secret, high)[0])
    assert wire.grant_of(coa, h.grant).exempt_rule is None, "a profile without the rule ends it"
