"""The handset state machine (issue 6): attach, start, interims, slices, CoA, Disconnect, stop,
backoff after a reject. Pure: no sockets, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.handset import Action, Grant, Handset, State, TransitionError

HIGH = Grant("high-lte", 112_500_000, 37_500_000, 10_000_000, True, b"quotad1;c;m;s", "100.64.0.1", 600, 86400)
LOW = Grant("low", 200_000, 200_000, 0, False)


def attached(now: float = 0.0, duration: float | None = None) -> Handset:
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    assert h.due(now) is Action.ATTACH
    h.attach_sent(now)
    h.accepted(HIGH, now, duration)
    assert h.due(now) is Action.START
    h.start_acked()
    return h


def test_attach_start_interim_stop_then_idle_until_next_session() -> None:
    """idle → attaching → active → stopping → idle; interims every Acct-Interim-Interval."""
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    assert (h.state, h.due(0.0)) == (State.IDLE, Action.ATTACH)
    h.attach_sent(0.0)
    assert (h.state, h.due(0.0), h.session_id) == (State.ATTACHING, Action.NONE, "819012345678-0001")
    h.accepted(HIGH, 0.0, duration=1800.0)
    assert (h.state, h.due(0.0)) == (State.ACTIVE, Action.START)
    h.start_acked()
    assert h.due(599.0) is Action.NONE
    assert h.due(600.0) is Action.INTERIM
    h.interim_sent(600.0)
    assert h.due(1199.0) is Action.NONE and h.due(1200.0) is Action.INTERIM
    assert h.due(1800.0) is Action.STOP
    h.stop_sent(1800.0)
    assert (h.state, h.terminate_cause) == (State.STOPPING, 1)
    h.stopped(1800.0, next_attach=1860.0)
    assert (h.state, h.due(1859.0), h.due(1860.0)) == (State.IDLE, Action.NONE, Action.ATTACH)


def test_session_timeout_stops_with_cause_session_timeout() -> None:
    """Session-Timeout of the accept ends the session; Acct-Terminate-Cause 5."""
    h = attached()
    h.interim_sent(86000.0)
    assert h.due(86400.0) is Action.STOP
    h.stop_sent(86400.0)
    assert h.terminate_cause == 5


def test_metered_usage_never_exceeds_the_slice_and_asks_for_the_next() -> None:
    """R-12: the slice granted caps the usage; when used up, REAUTH is due; the next grant refills it."""
    h = attached()
    h.used(6_000_000, 1_000_000)
    assert (h.slice_left, h.octets_out, h.octets_in) == (3_000_000, 6_000_000, 1_000_000)
    with pytest.raises(TransitionError):
        h.used(3_000_001, 0)
    h.used(3_000_000, 0)
    assert h.due(1.0) is Action.REAUTH
    h.reauth_sent()
    assert (h.state, h.due(1.0)) == (State.REAUTHORIZING, Action.NONE)
    h.reauthorized(HIGH)
    assert (h.state, h.slice_left, h.due(1.0)) == (State.ACTIVE, 10_000_000, Action.NONE)
    assert (h.octets_out, h.octets_in) == (9_000_000, 1_000_000), "counters stay cumulative"


def test_low_speed_is_not_metered() -> None:
    """R-17: usage at low speed consumes no slice, so the gateway does not hold it to one."""
    h = attached()
    assert h.coa(LOW)
    h.used(50_000_000, 1_000_000)
    assert (h.slice_left, h.due(1.0)) == (0, Action.NONE)


def test_coa_changes_rate_without_drop_and_nak_without_session() -> None:
    """RFC 5176 CoA: new profile applied, session stays up; no session → False (NAK)."""
    h = attached()
    assert h.coa(LOW) is True
    assert (h.state, h.grant) == (State.ACTIVE, LOW)
    idle = Handset("819000000009", "440100000000009", "3534900000000009")
    assert idle.coa(LOW) is False
    assert idle.disconnected() is False


def test_disconnect_ends_the_session_with_admin_reset() -> None:
    """RFC 5176 Disconnect: STOP due at once, Acct-Terminate-Cause Admin-Reset (6)."""
    h = attached()
    assert h.disconnected() is True
    assert h.due(5.0) is Action.STOP
    h.stop_sent(5.0)
    h.stopped(5.0, next_attach=None)
    assert (h.state, h.due(1e9)) == (State.DETACHED, Action.NONE)


def test_disconnect_during_reauthorization_stops_after_the_reply() -> None:
    """A Disconnect that arrives while the next slice is being asked for: ACKed, and the Stop
    (Admin-Reset) is due as soon as the re-authorization has come back, whatever it said."""
    for ok in (True, False):
        h = attached()
        h.used(10_000_000, 0)
        h.reauth_sent()
        assert h.disconnected() is True
        assert h.due(2.0) is Action.NONE
        h.reauthorized(HIGH) if ok else h.reauth_failed()
        assert h.due(2.0) is Action.STOP
        h.stop_sent(2.0)
        assert h.terminate_cause == 6


def test_reject_and_timeout_back_off_exponentially_then_reset_on_accept() -> None:
    """Re-attach after reject/backoff: 5, 10, 20 s … capped at 300 s; an accept resets it."""
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    waits = []
    now = 0.0
    for i in range(8):
        h.attach_sent(now)
        if i % 2:
            h.timed_out(now)
        else:
            h.rejected(now, "Unknown SIM")
        waits.append(h.not_before - now)
        now = h.not_before
    assert waits == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert h.last_reject == "Unknown SIM"
    assert h.due(now - 1) is Action.NONE and h.due(now) is Action.ATTACH
    h.attach_sent(now)
    h.accepted(HIGH, now)
    assert h.attempts == 0


def test_backoff_stays_capped_after_thousands_of_rejects() -> None:
    """A handset whose line has ended is rejected every few minutes for weeks: the backoff stays
    at its cap (it once overflowed a float after 1,025 rejects in a row)."""
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    now = 0.0
    for _ in range(3000):
        h.attach_sent(now)
        h.rejected(now, "Line is terminated")
        now = h.not_before
    assert (h.attempts, h.backoff(), h.not_before) == (3000, 300.0, now)


def test_reauth_failure_ends_the_session() -> None:
    """A rejected re-authorization (e.g. the line was suspended, R-30) ends the session."""
    h = attached()
    h.used(10_000_000, 0)
    h.reauth_sent()
    h.reauth_failed()
    assert h.due(1.0) is Action.STOP
    h.stop_sent(1.0)
    assert h.terminate_cause == 10


def test_events_out_of_state_are_refused() -> None:
    """The machine refuses impossible events instead of drifting."""
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    with pytest.raises(TransitionError):
        h.accepted(HIGH, 0.0)
    with pytest.raises(TransitionError):
        h.used(1, 0)
    h.attach_sent(0.0)
    with pytest.raises(TransitionError):
        h.attach_sent(0.0)


OPS = ("tick", "accept", "reject", "timeout", "use", "coa_low", "coa_high", "disconnect", "reauth_ok", "reauth_fail")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 30_000_000)), max_size=60))
def test_any_sequence_keeps_the_invariants(ops: list[tuple[str, int]]) -> None:
    """Whatever the gateway and quotad do, in any order: a metered session never holds a negative
    slice, counters only grow within a session, and what is due is always valid in the state."""
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    now = 0.0
    for op, n in ops:
        now += 1.0
        before = (h.session_seq, h.octets_in + h.octets_out)
        _drive(h, op, n, now)
        if h.grant is not None and h.grant.metered:
            assert h.slice_left >= 0
        if h.session_seq == before[0]:
            assert h.octets_in + h.octets_out >= before[1]
        action = h.due(now)
        valid = {State.IDLE: {Action.ATTACH, Action.NONE}, State.ATTACHING: {Action.NONE},
                 State.REAUTHORIZING: {Action.NONE}, State.STOPPING: {Action.NONE}, State.DETACHED: {Action.NONE}}
        assert action in valid.get(h.state, set(Action))


def _drive(h: Handset, op: str, n: int, now: float) -> None:
    """Apply ``op`` the way the gateway would, only when it makes sense in the state."""
    action = h.due(now)
    if op == "tick":
        if action is Action.ATTACH:
            h.attach_sent(now)
        elif action is Action.START:
            h.start_acked()
        elif action is Action.INTERIM:
            h.interim_sent(now)
        elif action is Action.REAUTH:
            h.reauth_sent()
        elif action is Action.STOP:
            h.stop_sent(now)
            h.stopped(now, now + 1)
    elif h.state is State.ATTACHING and op in ("accept", "reject", "timeout"):
        if op == "accept":
            h.accepted(HIGH, now)
        elif op == "reject":
            h.rejected(now)
        else:
            h.timed_out(now)
    elif h.state is State.REAUTHORIZING and op in ("reauth_ok", "reauth_fail"):
        h.reauthorized(HIGH) if op == "reauth_ok" else h.reauth_failed()
    elif op == "use" and h.state is State.ACTIVE and h.started:
        room = h.room()
        h.used(min(n, room), 0)
    elif op in ("coa_low", "coa_high"):
        assert h.coa(LOW if op == "coa_low" else HIGH) is (h.state in (State.ACTIVE, State.REAUTHORIZING))
    elif op == "disconnect":
        up = h.state in (State.ACTIVE, State.REAUTHORIZING)
        assert h.disconnected() is up


def test_session_rate_is_the_profile_capped_by_the_radio() -> None:
    """R-6/R-20: an LTE session moves at its profile's rate; a 3G session never above what 3G
    carries, even when a CoA brings the LTE figures (quotad keeps no radio type per session)."""
    from simulators.gateway import session_rate
    from simulators.traffic import Rate

    lte, umts = attached(), Handset("819000000043", "440100000000043", "3534900000000043", rat="3g")
    umts.attach_sent(0.0)
    umts.accepted(HIGH, 0.0)
    assert session_rate(lte) == Rate(112_500_000, 37_500_000)
    assert session_rate(umts) == Rate(14_400_000, 5_760_000)
    umts.coa(LOW)
    assert session_rate(umts) == Rate(200_000, 200_000)


def test_a_new_session_starts_its_counters_with_its_number() -> None:
    """The sequence hypothesis found: attach, use, disconnect, stop, attach again. The second
    session's number was taken at the attach but its counters still held the first session's
    octets until the Accept; counters and number now change together."""
    h = Handset("819012345678", "440100000000001", "3534900000000001")
    h.attach_sent(1.0)
    h.accepted(HIGH, 2.0)
    h.start_acked()
    h.used(1, 0)
    assert h.disconnected() is True
    h.stop_sent(6.0)
    h.stopped(6.0, 7.0)
    h.attach_sent(7.0)
    assert (h.session_seq, h.octets_in, h.octets_out) == (2, 0, 0)
    h.accepted(HIGH, 8.0)
    assert (h.session_seq, h.octets_in, h.octets_out) == (2, 0, 0)
