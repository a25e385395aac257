"""The store's refusals: which input (field), which rule, and why. The API maps them to HTTP
answers (api/errors.py); the scripts report them as {'ERR', kind, field, ...} (quota.lua)."""

from __future__ import annotations

from typing import Any

from quotad.quota import lua
from quotad.quota.model import LineRef


class QuotaError(Exception):
    """A refused quota operation: which input (field), which rule, and why."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule


class NotFound(QuotaError):
    """The contract or line does not exist."""


class Conflict(QuotaError):
    """A duplicate (contract, MSISDN, ICCID, IMSI) or a change that cannot be made."""


class LimitExceeded(QuotaError):
    """A plan or purchase limit would be passed."""


_KINDS: dict[str, type[QuotaError]] = {"notfound": NotFound, "conflict": Conflict, "limit": LimitExceeded}


def check(res: list[Any], rule: str | None, message: str) -> list[Any]:
    """Raise the QuotaError a script reported as {'ERR', kind, field, ...}; else the reply."""
    refused = lua.refusal(res)
    if refused is not None:
        raise _KINDS[refused.kind](f"{message}: {refused.kind} ({refused.field})", field=refused.field, rule=rule)
    return res


def no_line(ref: LineRef) -> NotFound:
    return NotFound(f"no line {ref.msisdn} in contract {ref.contract_id}", field="msisdn", rule="R-2")
