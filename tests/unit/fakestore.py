"""An in-memory store for the handlers' unit tests: the calls aaa.access and aaa.accounting make
(their AttachStore / AccountStore protocols and set_speed), answered from plain fields, every call
recorded. Pure logic only: the real store is tested against Redis in tests/integration."""

from __future__ import annotations

from dataclasses import dataclass, field

from quotad.quota.errors import NotFound
from quotad.quota.model import (
    AccountingReport,
    AccountResult,
    AttachRequest,
    AttachResult,
    LineFacts,
    LineRef,
    ReportOutcome,
)

MB = 1_000_000


def facts(speed: str = "high", held: int = 10 * MB, pool: int = 90 * MB) -> LineFacts:
    return LineFacts("minimum_start", "active", True, held, pool, 0, speed)


@dataclass
class FakeStore:
    lines: dict[str, LineRef] = field(default_factory=dict)  # by IMSI and by MSISDN
    live: set[tuple[LineRef, str, str]] = field(default_factory=set)  # (line, session, gateway)
    refuse: str | None = None  # attach refused with this reason
    speed: str = "high"
    outcome: ReportOutcome = ReportOutcome.COUNTED
    gateway_sessions: dict[str, int] = field(default_factory=dict)
    fail: Exception | None = None  # raised by every call (a Redis error)
    calls: list[str] = field(default_factory=list)
    attaches: list[AttachRequest] = field(default_factory=list)
    reports: list[AccountingReport] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail is not None:
            raise self.fail

    async def find_line(self, imsi: str | None, msisdn: str | None) -> LineRef | None:
        self._call("find_line")
        return self.lines.get(imsi or "") or self.lines.get(msisdn or "")

    async def is_live(self, ref: LineRef, session_id: str, gateway: str) -> bool:
        self._call("is_live")
        return (ref, session_id, gateway) in self.live

    async def attach(self, req: AttachRequest) -> AttachResult:
        self._call("attach")
        self.attaches.append(req)
        if self.refuse is not None:
            return AttachResult(ok=False, reason=self.refuse, facts=None, granted=0, framed_ip=None)
        return AttachResult(ok=True, reason=None, facts=facts(self.speed), granted=10 * MB,
                            framed_ip="100.64.0.7", session_id=req.session_id)

    async def set_speed(self, ref: LineRef, expected: str, new: str) -> bool:
        self._call("set_speed")
        if self.speed != expected:
            return False
        self.speed = new
        return True

    async def account(self, report: AccountingReport) -> AccountResult:
        self._call("account")
        if report.ref not in self.lines.values():
            raise NotFound(f"no line {report.ref.msisdn}")
        self.reports.append(report)
        return AccountResult(facts(self.speed), report.octets, report.octets, 0, 0, 0, self.outcome)

    async def end_gateway_sessions(self, gateway: str, now: float, batch: int = 100) -> int:
        self._call("end_gateway_sessions")
        return self.gateway_sessions.pop(gateway, 0)
