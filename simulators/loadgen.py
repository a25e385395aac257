"""One load-generator process of ``quotad-sim load``: requests out, replies verified, latencies kept.

Callback style on purpose (no Task per request): a reply's callback records it and, in a closed
loop, sends the next request at once; in an open loop a 1 ms timer sends what the rate is owed,
never more than the window in flight. A request unanswered after ``timeout`` counts as a timeout
(no retransmission: a load generator measures, it does not recover). Counters are published to
shared memory for the parent's progress line; the final tally goes back through a queue.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from quotad.radius import packet as rp
from simulators.wire import verify_reply

KINDS = ("pap", "chap", "acct")
# Published per process: sent, replies, timeouts, errors.
SLOTS = 4
_NAS_IP = rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1]))
_COMMON = (_NAS_IP + rp.attr_int(rp.SERVICE_TYPE, 2) + rp.attr_int(rp.NAS_PORT_TYPE, 18)
           + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp"))
_USER = rp.attr(rp.USER_NAME, b"mio@iij")
_PASSWORD = b"iij"
_ACCT_STATUS = (1, 3, 2)  # Start, Interim-Update, Stop of one session


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    host: str
    auth_port: int
    acct_port: int
    secret: bytes
    pattern: tuple[str, ...]  # request kinds in the order they are sent (the mix), cycled
    lines: int
    window: int  # requests in flight at most (this process)
    rate: float  # requests/s offered by this process; 0 = closed loop
    duration: float
    timeout: float
    index: int  # this process's number: it takes every ``processes``-th sequence number
    processes: int
    sockets: int = 4


@dataclass(slots=True)
class Tally:
    """What one process saw; ``latency_us`` holds one entry per answered request."""

    sent: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # "<kind>:<accept|reject|response|timeout>"
    errors: Counter[str] = field(default_factory=Counter)  # "<kind>:<reason>"
    rejects: Counter[str] = field(default_factory=Counter)  # "<kind>:<Reply-Message>" of each Access-Reject
    latency_us: array.array[int] = field(default_factory=lambda: array.array("I"))
    elapsed: float = 0.0
    cpu: float = 0.0  # CPU seconds this process used while sending

    def as_dict(self) -> dict[str, Any]:
        return {"sent": dict(self.sent), "outcomes": dict(self.outcomes), "errors": dict(self.errors),
                "rejects": dict(self.rejects), "latency_us": self.latency_us.tobytes(), "elapsed": self.elapsed,
                "cpu": self.cpu}


def build(kind: str, seq: int, identifier: int, lines: int, secret: bytes) -> tuple[bytes, bytes]:
    """Request number ``seq`` of ``kind``; MSISDN 8190%08d of line seq mod lines (radload's pattern)."""
    if kind == "acct":
        session, step = divmod(seq, 3)
        msisdn = f"8190{session % lines:08d}".encode()
        status = _ACCT_STATUS[step]
        used = 0 if status == 1 else 123_456 * step
        attrs = b"".join((
            _USER, _COMMON, rp.attr_int(rp.ACCT_STATUS_TYPE, status),
            rp.attr(rp.ACCT_SESSION_ID, f"ld{session:014x}".encode()), rp.attr(rp.CALLING_STATION_ID, msisdn),
            rp.attr_int(rp.ACCT_INPUT_OCTETS, used), rp.attr_int(rp.ACCT_OUTPUT_OCTETS, used * 5),
            rp.attr_int(rp.ACCT_SESSION_TIME, 60 * step), rp.attr_int(rp.EVENT_TIMESTAMP, int(time.time())),
        ))
        return rp.encode_request(rp.ACCOUNTING_REQUEST, identifier, secret, attrs, message_authenticator=False)
    msisdn = f"8190{seq % lines:08d}".encode()
    authenticator = os.urandom(16)
    if kind == "chap":
        challenge = os.urandom(16)
        ident = bytes((identifier,))
        cred = (rp.attr(rp.CHAP_PASSWORD, ident + hashlib.md5(ident + _PASSWORD + challenge).digest())
                + rp.attr(rp.CHAP_CHALLENGE, challenge))
    else:
        cred = rp.pap_attr(_PASSWORD, secret, authenticator)
    attrs = b"".join((_USER, cred, _COMMON, rp.attr(rp.CALLING_STATION_ID, msisdn)))
    return rp.encode_request(rp.ACCESS_REQUEST, identifier, secret, attrs, authenticator=authenticator)


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, gen: Generator, number: int) -> None:
        self.gen = gen
        self.number = number
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.gen.received(self.number, data)

    def error_received(self, exc: Exception) -> None:
        self.gen.tally.errors["send:" + type(exc).__name__] += 1


@dataclass(slots=True)
class _Pending:
    kind: str
    authenticator: bytes
    sent_ns: int


class Generator:
    """The requests of one process (see the module docstring)."""

    def __init__(self, spec: WorkerSpec, shared: Any = None) -> None:
        self.spec = spec
        self.shared = shared
        self.tally = Tally()
        self.seq = {k: spec.index for k in KINDS}
        self.turn = spec.index  # position in the mix pattern
        self.sockets: list[_Socket] = []
        self.free: list[tuple[int, int]] = []  # (socket, identifier)
        self.pending: dict[tuple[int, int], _Pending] = {}
        self.deadline = 0.0
        self.started = 0.0
        self.owed = 0.0
        self.done: asyncio.Future[None] | None = None

    async def run(self) -> Tally:
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        for n in range(self.spec.sockets):
            proto = _Socket(self, n)
            await loop.create_datagram_endpoint(lambda p=proto: p, local_addr=("0.0.0.0", 0))  # type: ignore[misc]
            self.sockets.append(proto)
        self.free = [(s, i) for i in range(256) for s in range(self.spec.sockets)][: self.spec.window]
        cpu = time.process_time()
        self.started = time.monotonic()
        self.deadline = self.started + self.spec.duration
        if self.spec.rate > 0:
            loop.call_soon(self._pace)
        else:
            for _ in range(len(self.free)):
                self._send()
        loop.call_later(0.1, self._sweep)
        await self.done
        for s in self.sockets:
            assert s.transport is not None
            s.transport.close()
        self.tally.elapsed = time.monotonic() - self.started
        self.tally.cpu = time.process_time() - cpu
        return self.tally

    # --- sending ------------------------------------------------------------------------

    def _send(self) -> None:
        if not self.free or time.monotonic() >= self.deadline:
            return
        slot = self.free.pop()
        pattern = self.spec.pattern
        kind = pattern[self.turn % len(pattern)]
        self.turn += self.spec.processes
        seq = self.seq[kind]
        self.seq[kind] += self.spec.processes
        datagram, authenticator = build(kind, seq, slot[1], self.spec.lines, self.spec.secret)
        port = self.spec.acct_port if kind == "acct" else self.spec.auth_port
        self.pending[slot] = _Pending(kind, authenticator, time.perf_counter_ns())
        transport = self.sockets[slot[0]].transport
        assert transport is not None
        transport.sendto(datagram, (self.spec.host, port))
        self.tally.sent[kind] += 1

    def _pace(self) -> None:
        """Open loop: every millisecond send what the offered rate is owed (window permitting)."""
        now = time.monotonic()
        if now >= self.deadline:
            return
        due = (now - self.started) * self.spec.rate - sum(self.tally.sent.values())
        for _ in range(int(due)):
            if not self.free:
                break
            self._send()
        asyncio.get_running_loop().call_later(0.001, self._pace)

    # --- receiving ----------------------------------------------------------------------

    def received(self, sock: int, data: bytes) -> None:
        now_ns = time.perf_counter_ns()
        try:
            pkt = rp.decode(data)
        except rp.PacketError:
            self.tally.errors["any:malformed"] += 1
            return
        slot = (sock, pkt.identifier)
        pending = self.pending.get(slot)
        if pending is None:
            self.tally.errors["any:late_or_unmatched"] += 1
            return
        reason = verify_reply(pkt, pending.authenticator, self.spec.secret)
        if reason is None and pkt.code not in (rp.ACCESS_ACCEPT, rp.ACCESS_REJECT, rp.ACCOUNTING_RESPONSE):
            reason = f"unexpected_code_{pkt.code}"
        if reason is not None:
            self.tally.errors[f"{pending.kind}:{reason}"] += 1
            return  # the request stays pending: a valid reply may still come, else it times out
        del self.pending[slot]
        outcome = {rp.ACCESS_ACCEPT: "accept", rp.ACCESS_REJECT: "reject"}.get(pkt.code, "response")
        self.tally.outcomes[f"{pending.kind}:{outcome}"] += 1
        if pkt.code == rp.ACCESS_REJECT:  # why: quotad says it in Reply-Message
            self.tally.rejects[f"{pending.kind}:{(pkt.get(rp.REPLY_MESSAGE) or b'').decode('utf-8', 'replace')}"] += 1
        self.tally.latency_us.append(min((now_ns - pending.sent_ns) // 1000, 0xFFFFFFFF))
        self.free.append(slot)
        if self.spec.rate <= 0:
            self._send()

    def _sweep(self) -> None:
        """Every 100 ms: expire requests past the timeout, publish counters, finish when done."""
        now_ns = time.perf_counter_ns()
        limit = int(self.spec.timeout * 1e9)
        for slot, pending in list(self.pending.items()):
            if now_ns - pending.sent_ns > limit:
                del self.pending[slot]
                self.tally.outcomes[f"{pending.kind}:timeout"] += 1
                self.free.append(slot)
                if self.spec.rate <= 0:
                    self._send()
        self._publish()
        finished = time.monotonic() >= self.deadline and not self.pending
        if finished and self.done is not None and not self.done.done():
            self.done.set_result(None)
            return
        asyncio.get_running_loop().call_later(0.1, self._sweep)

    def _publish(self) -> None:
        if self.shared is None:
            return
        base = self.spec.index * SLOTS
        outcomes = self.tally.outcomes
        timeouts = sum(v for k, v in outcomes.items() if k.endswith(":timeout"))
        self.shared[base] = sum(self.tally.sent.values())
        self.shared[base + 1] = sum(outcomes.values()) - timeouts
        self.shared[base + 2] = timeouts
        self.shared[base + 3] = sum(self.tally.errors.values())


def worker_main(spec: WorkerSpec, shared: Any, ready: Any, go: Any, results: Any) -> None:
    """Entry point of a generator process: wait for the start signal, run, send the tally back."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    ready.wait()
    go.wait()
    tally = runner(Generator(spec, shared).run())
    results.put((spec.index, tally.as_dict()))
