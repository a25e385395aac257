"""One simulated handset's session life, as a pure state machine (no I/O, no clock of its own).

::

    IDLE ──attach_sent──► ATTACHING ──accepted──► ACTIVE ──stop / disconnected──► STOPPING
     ▲                      │ rejected / timed_out   │ ▲ slice used up                │ stopped
     └──── backoff ─────────┘                        ▼ │ reauthorized                 ▼
                                               REAUTHORIZING                 IDLE (next session)
                                                                              or DETACHED (done)

The gateway asks :meth:`Handset.due` what to do at a given time, does it (sends the packet), and
feeds the outcome back (``accepted``, ``rejected``, ``timed_out`` …). Usage is added with
:meth:`Handset.used`; while the session's profile is metered it never exceeds the slice granted.
A rejected or unanswered attach is retried after an exponential backoff.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.Enum):
    IDLE = "idle"
    ATTACHING = "attaching"
    ACTIVE = "active"
    REAUTHORIZING = "reauthorizing"
    STOPPING = "stopping"
    DETACHED = "detached"


class Action(enum.Enum):
    NONE = "none"
    ATTACH = "attach"
    START = "start"  # Accounting-Start after the accept
    INTERIM = "interim"
    REAUTH = "reauth"  # the slice is used up: report it and ask for the next (Authorize-Only)
    STOP = "stop"


class TransitionError(RuntimeError):
    """An event that makes no sense in the handset's state (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What an Access-Accept (or a CoA) tells the gateway about the session."""

    profile: str
    down_bps: int
    up_bps: int
    granted: int  # Quotad-Granted-Octets: the slice the SIM holds
    metered: bool  # False for the low-speed profiles: usage there consumes no slice
    klass: bytes | None = None
    framed_ip: str | None = None
    interim_interval: int = 600
    session_timeout: int = 86400
    exempt_rule: str | None = None  # Quotad-Exempt-Rule: zero-rated services pass beside the cap
    sliced: bool = True  # the session is given slices (False: its accept had no Quotad-Granted-Octets)


@dataclass(slots=True)
class Handset:
    """A SIM in a handset; ``octets_in`` is what it sent (uplink), ``octets_out`` what it received."""

    msisdn: str
    imsi: str
    imeisv: str
    rat: str = "lte"  # "lte" | "3g"
    auth: str = "pap"  # "pap" | "chap"
    state: State = State.IDLE
    not_before: float = 0.0  # earliest time of the next attach
    attempts: int = 0  # failed attaches in a row
    backoff_base: float = 5.0
    backoff_max: float = 300.0
    session_seq: int = 0
    grant: Grant | None = None
    slice_left: int = 0
    octets_in: int = 0
    octets_out: int = 0
    exempt_in: int = 0  # the zero-rated part of octets_in / octets_out
    exempt_out: int = 0
    lifetime_octets: int = 0  # both directions over every session
    lifetime_exempt: int = 0
    started_at: float = 0.0
    next_interim: float = 0.0
    stop_at: float | None = None  # planned end of this session
    started: bool = False  # Accounting-Start acknowledged
    terminate_cause: int = 1  # User-Request
    last_reject: str = ""
    fixed_session_id: str = ""  # a trace's own Acct-Session-Id (replay)
    # The APN (Called-Station-Id) and its shared credentials (the consumer APN by default).
    apn: bytes = b"iijmio.jp"
    user: bytes = b"mio@iij"
    password: bytes = b"iij"

    @property
    def session_id(self) -> str:
        """Acct-Session-Id of the current session."""
        return self.fixed_session_id or f"{self.msisdn}-{self.session_seq:04d}"

    # --- what to do next ----------------------------------------------------------------

    def due(self, now: float) -> Action:
        """The request the gateway should send for this handset at ``now`` (or NONE)."""
        if self.state is State.IDLE:
            return Action.ATTACH if now >= self.not_before else Action.NONE
        if self.state is not State.ACTIVE:
            return Action.NONE
        if not self.started:
            return Action.START
        grant = self._grant()
        if self.stop_at is not None and now >= self.stop_at:
            return Action.STOP
        if now >= self.started_at + grant.session_timeout:
            return Action.STOP
        if grant.metered and self.slice_left <= 0:
            return Action.REAUTH
        if now >= self.next_interim:
            return Action.INTERIM
        return Action.NONE

    def room(self) -> int:
        """Octets (both directions) the session may still move on its slice; unbounded when not metered."""
        grant = self._grant()
        if self.state is not State.ACTIVE or not self.started:
            return 0
        return self.slice_left if grant.metered else 2**62

    # --- events -------------------------------------------------------------------------

    def attach_sent(self, now: float) -> None:
        self._expect(State.IDLE)
        self.session_seq += 1  # a new session: its counters start at zero with its number
        self.octets_in = self.octets_out = self.exempt_in = self.exempt_out = 0
        self.state = State.ATTACHING

    def accepted(self, grant: Grant, now: float, duration: float | None = None) -> None:
        """The Access-Accept: the session is up (Accounting-Start is due next)."""
        self._expect(State.ATTACHING)
        self.state = State.ACTIVE
        self.attempts = 0
        self.grant = grant
        self.slice_left = grant.granted
        self.started_at = now
        self.next_interim = now + grant.interim_interval
        self.stop_at = None if duration is None else now + duration
        self.started = False
        self.terminate_cause = 1

    def start_acked(self) -> None:
        self._expect(State.ACTIVE)
        self.started = True

    def rejected(self, now: float, reason: str = "") -> None:
        """Access-Reject: back to IDLE, the next attempt after the backoff."""
        self._expect(State.ATTACHING)
        self.last_reject = reason
        self._back_off(now)

    def timed_out(self, now: float) -> None:
        """No answer to the Access-Request (after the retries): like a reject."""
        self._expect(State.ATTACHING)
        self._back_off(now)

    def used(self, down: int, up: int, exempt_down: int = 0, exempt_up: int = 0) -> None:
        """Octets moved: ``down``/``up`` under the profile (a metered session never moves more than
        its slice), ``exempt_*`` to zero-rated services beside it; all go into the counters."""
        self._expect(State.ACTIVE)
        if min(down, up, exempt_down, exempt_up) < 0:
            raise ValueError("usage must be ≥ 0")
        if self._grant().metered:
            if down + up > self.slice_left:
                raise TransitionError(f"{down + up} octets exceed the slice left ({self.slice_left})")
            self.slice_left -= down + up
        self.octets_out += down + exempt_down
        self.octets_in += up + exempt_up
        self.exempt_out += exempt_down
        self.exempt_in += exempt_up
        self.lifetime_octets += down + up + exempt_down + exempt_up
        self.lifetime_exempt += exempt_down + exempt_up

    def interim_sent(self, now: float) -> None:
        self._expect(State.ACTIVE)
        self.next_interim = now + self._grant().interim_interval

    def reauth_sent(self) -> None:
        self._expect(State.ACTIVE)
        self.state = State.REAUTHORIZING

    def reauthorized(self, grant: Grant) -> None:
        """The Authorize-Only accept: the next slice (and maybe a new speed)."""
        self._expect(State.REAUTHORIZING)
        self.state = State.ACTIVE
        self.grant = grant
        self.slice_left = grant.granted

    def reauth_failed(self) -> None:
        """Re-authorization rejected or unanswered: the session ends."""
        self._expect(State.REAUTHORIZING)
        self.state = State.ACTIVE
        if self.terminate_cause == 1:
            self.terminate_cause = 10  # NAS-Request
        self.stop_at = 0.0

    def coa(self, grant: Grant) -> bool:
        """CoA-Request: new rate (and slice); False when no session is up (the gateway NAKs)."""
        if self.state not in (State.ACTIVE, State.REAUTHORIZING):
            return False
        self.grant = grant
        self.slice_left = grant.granted if grant.metered else 0
        return True

    def disconnected(self) -> bool:
        """Disconnect-Request: the session ends now (the Stop is due, after a re-authorization in
        flight has come back); False when none is up (NAK)."""
        if self.state not in (State.ACTIVE, State.REAUTHORIZING):
            return False
        self.terminate_cause = 6  # Admin-Reset
        self.stop_at = 0.0
        return True

    def stop_sent(self, now: float) -> None:
        """Accounting-Stop sent; a session cut by Session-Timeout says so in Acct-Terminate-Cause."""
        self._expect(State.ACTIVE)
        if self.terminate_cause == 1 and now >= self.started_at + self._grant().session_timeout:
            self.terminate_cause = 5  # Session-Timeout
        self.state = State.STOPPING

    def stopped(self, now: float, next_attach: float | None) -> None:
        """Accounting-Stop answered (or given up on): IDLE until ``next_attach``, or DETACHED."""
        self._expect(State.STOPPING)
        self.grant = None
        self.slice_left = 0
        if next_attach is None:
            self.state = State.DETACHED
        else:
            self.state = State.IDLE
            self.not_before = next_attach

    # --- helpers ------------------------------------------------------------------------

    def backoff(self) -> float:
        """Seconds before the next attempt after ``attempts`` failures: doubling, capped."""
        # The exponent is bounded: after a thousand rejects (a line that has ended, retried for
        # days) 2 ** attempts would be past what a float holds.
        return min(self.backoff_max, self.backoff_base * 2 ** min(max(self.attempts - 1, 0), 62))

    def _back_off(self, now: float) -> None:
        self.attempts += 1
        self.state = State.IDLE
        self.not_before = now + self.backoff()

    def _grant(self) -> Grant:
        if self.grant is None:
            raise TransitionError(f"{self.msisdn}: no grant in state {self.state.value}")
        return self.grant

    def _expect(self, *states: State) -> None:
        if self.state not in states:
            raise TransitionError(f"{self.msisdn}: event not valid in state {self.state.value}")
