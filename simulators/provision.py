"""`quotad-sim provision`: the lines load tests and bench/radload.c use.

Line n (0 ≤ n < N) has MSISDN 8190%08d (radload's pattern), IMSI 44010%010d and ICCID
8981%015d, on a contract ``sim-<n>`` of the chosen plan (default light_start: a 1 GB bundle), or,
with ``--family``, three lines per family_share contract ``simf-<n // 3>``. Existing records are
left alone, so provisioning is safe to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SimLine:
    contract: str
    msisdn: str
    imsi: str
    iccid: str


def sim_lines(count: int, family: bool = False) -> Iterable[SimLine]:
    for n in range(count):
        contract = f"simf-{n // 3}" if family else f"sim-{n}"
        yield SimLine(contract, f"8190{n:08d}", f"44010{n:010d}", f"8981{n:015d}")


async def provision(
    store: Any, count: int, plan: str, now: float, start: dt.date, family: bool = False, concurrency: int = 256
) -> int:
    """Create the lines (and their contracts) that are missing; return how many lines were created."""
    from quotad.quota.errors import Conflict

    created = 0
    contracts_done: set[str] = set()
    sem = asyncio.Semaphore(concurrency)

    async def one(line: SimLine) -> None:
        nonlocal created
        async with sem:
            if line.contract not in contracts_done:
                contracts_done.add(line.contract)
                with contextlib.suppress(Conflict):
                    plan_of = "family_share" if family else plan
                    await store.provisioning.create_contract(line.contract, plan_of, start, now)
            try:
                await store.provisioning.add_line(line.contract, line.msisdn, line.iccid, line.imsi, "nano", False, now)
                created += 1
            except Conflict:
                pass

    lines = list(sim_lines(count, family))
    if family:
        # the first line of each family creates the contract before its siblings use it
        firsts = [ln for i, ln in enumerate(lines) if i % 3 == 0]
        await asyncio.gather(*(one(ln) for ln in firsts))
        await asyncio.gather(*(one(ln) for i, ln in enumerate(lines) if i % 3))
    else:
        await asyncio.gather(*(one(ln) for ln in lines))
    return created
