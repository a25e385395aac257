"""The demo data set of `quotad demo`: a family_share contract with 3 lines, one light_start
and one minimum_start, provisioned on start (again only if missing), and a banner telling a new
user how to attach with radclient."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class DemoLine:
    contract: str
    msisdn: str
    iccid: str
    imsi: str


CONTRACTS = (("demo-family", "family_share"), ("demo-light", "light_start"), ("demo-minimum", "minimum_start"))

LINES = (
    DemoLine("demo-family", "819000000001", "8981100000000000011", "440100000000001"),
    DemoLine("demo-family", "819000000002", "8981100000000000029", "440100000000002"),
    DemoLine("demo-family", "819000000003", "8981100000000000037", "440100000000003"),
    DemoLine("demo-light", "819000000011", "8981100000000000110", "440100000000011"),
    DemoLine("demo-minimum", "819000000021", "8981100000000000219", "440100000000021"),
)


async def provision(store: Any, now: float, timezone: str = "Asia/Tokyo") -> int:
    """Create whatever of the demo set is missing; return how many records were created."""
    from quotad.quota.store import Conflict

    today = dt.datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    created = 0
    for contract_id, plan in CONTRACTS:
        try:
            await store.create_contract(contract_id, plan, today, now)
            created += 1
        except Conflict:
            pass
    for line in LINES:
        try:
            await store.add_line(line.contract, line.msisdn, line.iccid, line.imsi, "nano", False, now)
            created += 1
        except Conflict:
            pass
    return created


ATTACH = (
    "User-Name=mio@iij,User-Password=iij,Called-Station-Id=iijmio.jp,"
    "Calling-Station-Id=819000000001,Message-Authenticator=0x00"
)


def banner(auth_port: int, http_port: int) -> str:
    rows = "\n".join(f"  {ln.contract:<13} MSISDN {ln.msisdn}  IMSI {ln.imsi}  ICCID {ln.iccid}" for ln in LINES)
    return f"""
quotad demo is running. Demo lines:
{rows}
Attach one with FreeRADIUS's radclient (Debian package freeradius-utils):
  echo '{ATTACH}' \\
    | radclient -x 127.0.0.1:{auth_port} auth SECRET
(SECRET: the client secret of config [[clients]]; the built-in default is in README.md.)
Metrics: curl http://127.0.0.1:{http_port}/metrics   Stop: Ctrl-C
"""


async def provision_and_announce(daemon: Any) -> None:
    assert daemon.store is not None
    await provision(daemon.store, daemon.clock.now(), daemon.config.quota.timezone)
    print(banner(daemon.auth_port, daemon.http_port), file=sys.stderr, flush=True)
