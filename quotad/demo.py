"""The demo data set of `quotad demo`: a family_share contract with 3 lines, one light_start
and one minimum_start, provisioned on start (again only if missing), two API tokens, and a
banner telling a new user how to attach with radclient and call the API.

The demo's API tokens are made once per data directory (random, kept in ``demo-operator.token``
and ``demo-customer.token`` there, mode 600) and begin with ``quotad-demo-``. Only `quotad demo`
adds them to its configuration; a configuration file may not hold a token with that prefix
(config.py refuses it), so a demo token opens the API of the demo and of nothing else.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from quotad import log
from quotad.config import DEMO_TOKEN_PREFIX, Config, Secret, TokenSettings

_log = log.get("quotad.demo")


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
    from quotad.quota.errors import Conflict

    today = dt.datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    created = 0
    for contract_id, plan in CONTRACTS:
        try:
            await store.provisioning.create_contract(contract_id, plan, today, now)
            created += 1
        except Conflict:
            pass
    for line in LINES:
        try:
            await store.provisioning.add_line(line.contract, line.msisdn, line.iccid, line.imsi, "nano", False, now)
            created += 1
        except Conflict:
            pass
    return created


CUSTOMER_CONTRACT = "demo-family"  # the contract the demo's customer token is bound to

_TOKEN = re.compile(re.escape(DEMO_TOKEN_PREFIX) + r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class DemoTokens:
    """The demo's API tokens and the files that keep them."""

    operator: str
    customer: str
    operator_file: Path
    customer_file: Path

    def settings(self) -> tuple[TokenSettings, TokenSettings]:
        return (TokenSettings(Secret(self.operator), "operator"),
                TokenSettings(Secret(self.customer), "customer", CUSTOMER_CONTRACT))


def _kept_token(path: Path) -> str:
    """The token kept in ``path``, or a new one written there (mode 600) if it holds none."""
    try:
        kept = path.read_text().strip()
        if _TOKEN.fullmatch(kept):
            return kept
    except FileNotFoundError:
        pass
    token = DEMO_TOKEN_PREFIX + secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)  # an older file of other mode
    return token


def tokens(data_dir: str | Path) -> DemoTokens:
    """The demo's tokens of this data directory: made on the first start, the same ever after."""
    base = Path(data_dir)
    base.mkdir(parents=True, exist_ok=True)
    op, cu = base / "demo-operator.token", base / "demo-customer.token"
    return DemoTokens(_kept_token(op), _kept_token(cu), op, cu)


def with_tokens(config: Config, demo_tokens: DemoTokens) -> Config:
    """The configuration of `quotad demo`: the given one, with the demo's tokens added."""
    return replace(config, api=replace(config.api, tokens=config.api.tokens + demo_tokens.settings()))


ATTACH = (
    "User-Name=mio@iij,User-Password=iij,Called-Station-Id=iijmio.jp,Calling-Station-Id=819000000001,"
    "3GPP-IMSI=440100000000001,NAS-IP-Address=127.0.0.1,Acct-Session-Id=pgw1-0001,Message-Authenticator=0x00"
)


def banner(auth_port: int, http_port: int, demo_tokens: DemoTokens) -> str:
    rows = "\n".join(f"  {ln.contract:<13} MSISDN {ln.msisdn}  IMSI {ln.imsi}  ICCID {ln.iccid}" for ln in LINES)
    op, cu = demo_tokens, f"customer of {CUSTOMER_CONTRACT}:"
    return f"""
quotad demo is running. Demo lines:
{rows}
Attach one with FreeRADIUS's radclient (Debian package freeradius-utils):
  echo '{ATTACH}' \\
    | radclient -x 127.0.0.1:{auth_port} auth SECRET
(SECRET: the client secret of config [[clients]]; the built-in default is in README.md.)
API tokens (demo only: no other command and no config file accepts them):
  {"operator:":<25} {op.operator}  (kept in {op.operator_file})
  {cu:<25} {op.customer}  (kept in {op.customer_file})
  curl -H "Authorization: Bearer $(cat {op.operator_file})" http://127.0.0.1:{http_port}/v1/contracts/demo-family
Metrics: curl http://127.0.0.1:{http_port}/metrics   Stop: Ctrl-C
"""


def announcer(demo_tokens: DemoTokens) -> Any:
    """The before-serving hook of `quotad demo`: provision, then print the banner (the tokens'
    values go to the banner only, not to the JSON log: secrets are never logged)."""

    async def provision_and_announce(daemon: Any) -> None:
        assert daemon.store is not None
        await provision(daemon.store, daemon.clock.now(), daemon.config.quota.timezone)
        _log.info("demo_tokens", operator_file=str(demo_tokens.operator_file),
                  customer_file=str(demo_tokens.customer_file), customer_contract=CUSTOMER_CONTRACT)
        print(banner(daemon.auth_port, daemon.http_port, demo_tokens), file=sys.stderr, flush=True)

    return provision_and_announce
