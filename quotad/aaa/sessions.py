"""Live-session control: push a line's new speed to its sessions (CoA) or drop them (Disconnect).

R-21 / R-24: every change of a live session's speed is pushed at once; R-30: suspending drops
the line's sessions. The change itself is made by aaa.speed (one path for every caller: a
compare-and-set in Redis, so of several quotad processes exactly one sends the CoA for a
transition); this module owns its ``SpeedChanges`` and is its pusher. Sends run in the
background: a slow or silent gateway never delays the RADIUS reply that caused the change; the
CoA client bounds retries and outstanding requests.

Pushes wait in a queue with one entry per line (a newer change of a line replaces its older one,
keeping its place); at most ``max_pushers`` tasks read the queued lines' sessions from Redis and
hand the CoA-Requests to the CoA client. A burst of transitions (a pool running out for thousands
of lines in the same minute, a day window moving) so costs a bounded number of tasks and Redis
connections, however large it is, and no change is lost before the CoA client: each line gets
its latest speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from quotad import log, metrics
from quotad.aaa.profiles import EncodedProfile
from quotad.aaa.replyattrs import granted_attr
from quotad.aaa.speed import Push, SpeedChanges
from quotad.policy.decide import HIGH, profile_name
from quotad.policy.plans import PlanCatalog
from quotad.quota.model import LineRef, Session
from quotad.quota.store import QuotaStore
from quotad.radius.coa import DynamicAuthClient, Outcome, SessionTarget
from quotad.radius.reasons import CoaOutcome

_log = log.get("quotad.sessions")

# RFC 5176 §3.6 Error-Cause 503, Session Context Not Found: the gateway has no such session.
SESSION_CONTEXT_NOT_FOUND = 503
# A push whose Redis reads failed (a timeout while Redis stalls: an fsync held up by a busy disk,
# a failover) is queued again after each of these delays. The speed is already stored, so no later
# change would send it: without a retry that session kept its old speed until it re-authorized.
PUSH_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


async def end_lost(store: QuotaStore, ref: LineRef, sessions: list[Session], outcomes: list[Outcome],
                   now: float) -> int:
    """End the sessions a gateway says it does not have (a NAK with Error-Cause 503) as a Stop
    would: left live, they would keep their addresses and be pushed to for days. Returns how many."""
    ended = 0
    for session, outcome in zip(sessions, outcomes, strict=True):
        gone = outcome.outcome is CoaOutcome.NAK and outcome.error_cause == SESSION_CONTEXT_NOT_FOUND
        if gone and await store.end_session(ref, session.session_id, now):
            ended += 1
            metrics.SESSIONS_ENDED.labels("gateway_lost").inc()
            _log.info("session_gone", contract=ref.contract_id, session=session.session_id, nas=session.nas_ip)
    return ended


def target_of(ref: LineRef, session: Session) -> SessionTarget:
    return SessionTarget(
        session_id=session.acct_session_id or session.session_id,
        nas_ip=session.nas_ip,
        framed_ip=session.framed_ip,
        user_name=None,
        calling_station_id=ref.msisdn,
    )


class SessionControl:
    def __init__(
        self,
        store: QuotaStore,
        catalog: PlanCatalog,
        profiles: dict[str, EncodedProfile],
        coa: DynamicAuthClient,
        now: Callable[[], float],
        max_pushers: int = 16,
    ):
        self.store = store
        self.profiles = profiles
        self.coa = coa
        self.now = now
        self.max_pushers = max_pushers
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queued: dict[LineRef, Push] = {}  # line → latest speed to push, oldest first
        self._pushers = 0
        self._failures: dict[LineRef, int] = {}  # line → failed attempts of its queued push
        self.speeds = SpeedChanges(store, catalog, self.queue)

    @property
    def pending(self) -> int:
        """Lines whose speed change waits to be pushed."""
        return len(self._queued)

    @property
    def active_pushers(self) -> int:
        """Tasks draining the queue now (at most ``max_pushers``)."""
        return self._pushers

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("session_control_failed", error=repr(task.exception()))

    def queue(self, ref: LineRef, push: Push) -> None:
        """The line's speed class changed (this process won the compare-and-set): CoA its sessions.
        A change already queued for the line is replaced, keeping its place."""
        self._queued[ref] = push
        if self._pushers < self.max_pushers:
            self._pushers += 1
            self._spawn(self._pusher())

    async def _pusher(self) -> None:
        """Push queued changes, oldest first, until none is left."""
        queued = self._queued
        try:
            while queued:
                ref = next(iter(queued))
                push = queued.pop(ref)
                try:
                    await self._push(ref, push)
                except Exception as exc:  # one line's failure must not stop the queue
                    self._retry_later(ref, push, exc)
                else:
                    self._failures.pop(ref, None)
        finally:
            self._pushers -= 1

    def _retry_later(self, ref: LineRef, push: Push, exc: Exception) -> None:
        """Queue the line's push again after a back-off, unless a newer change queued it already."""
        failed = self._failures.get(ref, 0)
        if failed >= len(PUSH_RETRY_DELAYS):
            self._failures.pop(ref, None)
            _log.error("session_control_failed", contract=ref.contract_id, error=repr(exc), attempts=failed + 1)
            return
        self._failures[ref] = failed + 1
        _log.warning("session_control_failed", contract=ref.contract_id, error=repr(exc),
                     retry_in=PUSH_RETRY_DELAYS[failed])

        async def again() -> None:
            await asyncio.sleep(PUSH_RETRY_DELAYS[failed])
            if ref not in self._queued:
                self.queue(ref, push)

        self._spawn(again())

    async def _push(self, ref: LineRef, push: Push) -> None:
        sessions = [s for s in await self.store.live_sessions(ref) if s.session_id != push.told]
        if not sessions:
            return
        # The session's radio type is not kept; a 3G session gets the LTE figures until it
        # re-authorizes (the gateway caps at the radio's own rate anyway).
        attrs = self.profiles[profile_name(push.speed, None)].attributes
        if push.with_grant:
            attrs += granted_attr(await self._grant(ref, push.speed))
        # Not awaited: a silent gateway must not hold up the queue behind it. The CoA client
        # bounds these (max_pending per gateway; beyond it a request finishes at once, counted).
        self._spawn(self._send(ref, push.speed, sessions, attrs))

    async def _grant(self, ref: LineRef, speed: str) -> int:
        """What the line holds, for the CoA's Quotad-Granted-Octets."""
        if speed != HIGH:
            return (await self.store.line_facts(ref, self.now())).held
        # back at high speed, a line holding less than a slice (a throttled line holds
        # nothing) draws one now, so the CoA carries a grant the gateway can use at once.
        granted, facts = await self.store.top_up(ref, self.now())
        if granted:
            metrics.SLICES.inc()
            metrics.SLICE_BYTES.inc(granted)
        return facts.held

    async def _send(self, ref: LineRef, speed: str, sessions: list[Session], attrs: bytes) -> None:
        outcomes = await self.coa.send_all([target_of(ref, s) for s in sessions], attrs)
        _log.info("coa_sent", contract=ref.contract_id, speed=speed, outcomes=[o.outcome for o in outcomes])
        await end_lost(self.store, ref, sessions, outcomes, self.now())

    async def redecide(self, ref: LineRef) -> tuple[str, bool]:
        """Re-decide the line's speed now (an operator's change, the JST-midnight timer); (speed,
        whether this process changed it: it won the compare-and-set and queued the push)."""
        return await self.speeds.follow(ref, await self.store.line_facts(ref, self.now()))

    async def disconnect(self, ref: LineRef, keep_imsi: str | None = None) -> None:
        """R-30 / R-32 / R-33: drop every live session of the line (but those attached with
        ``keep_imsi``: after a card change, the new card's)."""
        sessions = [s for s in await self.store.live_sessions(ref) if not (keep_imsi and s.imsi == keep_imsi)]
        if sessions:
            outcomes = await self.coa.disconnect_all([target_of(ref, s) for s in sessions])
            _log.info("disconnect_sent", contract=ref.contract_id, outcomes=[o.outcome for o in outcomes])
            await end_lost(self.store, ref, sessions, outcomes, self.now())

    async def on_line_change(self, ref: LineRef, event: str) -> None:
        """Hook for the API: what a change to a line means for its live sessions ("suspend": R-30,
        R-33 lost or broken card; "card": a new card activated, R-32 / R-33)."""
        if event == "suspend":
            self._spawn(self.disconnect(ref))
        elif event == "card":
            self._spawn(self.disconnect(ref, keep_imsi=(await self.store.card(ref)).imsi))
        else:
            await self.redecide(ref)

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for the queued pushes and the sends they start."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=left)
