"""``quotad-sim gateway``: the simulated gateway in real time against a running quotad.

Handset n is provisioned line n of ``quotad-sim provision`` (MSISDN 8190%08d, IMSI 44010%010d);
a share of them are 3G and a share use CHAP. The gateway ticks every ``step`` seconds of wall
time; a status line goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import TextIO

from quotad.clock import SystemClock
from simulators.gateway import Gateway, GatewaySettings, SessionPlan
from simulators.handset import Handset, State
from simulators.traffic import DEFAULT_FILE, load_models


@dataclass(frozen=True, slots=True)
class Fleet:
    handsets: int = 100
    share_3g: float = 0.2
    share_chap: float = 0.3
    session_seconds: float | None = None
    gap_seconds: float = 30.0
    seed: int = 1
    first: int = 0  # line number of the first handset


def handsets(fleet: Fleet) -> list[Handset]:
    """The fleet's handsets: evenly spread 3G and CHAP shares (deterministic)."""
    out = []
    for i in range(fleet.handsets):
        n = fleet.first + i
        rat = "3g" if int((i + 1) * fleet.share_3g) > int(i * fleet.share_3g) else "lte"
        auth = "chap" if int((i + 1) * fleet.share_chap) > int(i * fleet.share_chap) else "pap"
        out.append(Handset(f"8190{n:08d}", f"44010{n:010d}", f"35349{n:011d}", rat=rat, auth=auth))
    return out


async def run(settings: GatewaySettings, fleet: Fleet, duration: float, step: float = 1.0,
              traffic_file: str = str(DEFAULT_FILE), status: TextIO | None = sys.stderr,
              record: bool = False) -> Gateway:
    """Run the fleet for ``duration`` seconds, then stop every session; the gateway holds the
    events (and, with ``record``, the trace of what it sent in ``gateway.recording``)."""
    clock = SystemClock()
    gateway = Gateway(settings, clock.now)
    gateway.recording = [] if record else None
    models = load_models(traffic_file)
    plan = SessionPlan(fleet.session_seconds, fleet.gap_seconds)
    for i, h in enumerate(handsets(fleet)):
        gateway.add(h, models[h.rat], seed=fleet.seed * 100_003 + i, plan=plan)
    await gateway.start()
    started = last = time.monotonic()
    try:
        while (now := time.monotonic()) < started + duration:
            await gateway.tick(clock.now(), now - last)
            last = now
            if status is not None:
                _status(status, gateway, now - started)
            await asyncio.sleep(max(0.0, step - (time.monotonic() - now)))
        await gateway.stop_all(clock.now())
        await gateway.settle()
    finally:
        await gateway.close()
    if status is not None:
        status.write("\n")
    return gateway


def _status(stream: TextIO, gateway: Gateway, elapsed: float) -> None:
    states = Counter(d.handset.state.value for d in gateway.devices)
    moved = sum(d.handset.lifetime_octets for d in gateway.devices)
    stream.write(f"\r{elapsed:6.1f} s  {dict(states)}  moved {moved / 1e6:,.1f} MB  events {len(gateway.events):,}")
    stream.flush()


def summary(gateway: Gateway) -> str:
    kinds = Counter(e.kind for e in gateway.events)
    moved = sum(d.handset.lifetime_octets for d in gateway.devices)
    active = sum(1 for d in gateway.devices if d.handset.state is State.ACTIVE)
    profiles = Counter(d.handset.grant.profile for d in gateway.devices if d.handset.grant is not None)
    return (f"{len(gateway.devices)} handsets moved {moved / 1e6:,.1f} MB; events {dict(kinds)}; "
            f"CoA/Disconnect {gateway.dynauth_counts or 'none'}; still active {active} {dict(profiles)}")
