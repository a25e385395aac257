"""Identity state in Redis (R-50, R-51): the contract holder, the verification, its history.

Every key is in the contract's hash slot (R-73), and each change is one Lua script:

    q:{c:C}:c        hash   field ``identity`` = "verified" once verified: the attach script reads
                            it for voice lines (R-3, R-50)
    q:{c:C}:holder   hash   family_name, given_name, address, birth_date, rev, updated
    q:{c:C}:idv      hash   the verification: at, who, document_type, supporting_type, images
                            (SHA-256 of each accepted image, comma-separated; never the images)
    q:{c:C}:idlog    list   the newest outcomes first, JSON {at, who, outcome, code, rule, field,
                            document_type}: no personal data, no image, no image hash for a refusal

A verification is recorded only against the holder revision it was checked with: a holder
changed in between makes the record a conflict, and the submission is checked again.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from quotad.identity.verify import Holder, Refusal, Verified
from quotad.quota import keys as k

VERIFIED = "verified"
UNVERIFIED = "unverified"
LOG_KEEP = 20

_SET_HOLDER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local rev = tonumber(redis.call('HGET', KEYS[2], 'rev') or '0')
if ARGV[6] ~= '' and tonumber(ARGV[6]) ~= rev then return {'conflict'} end
redis.call('HSET', KEYS[2], 'family_name', ARGV[1], 'given_name', ARGV[2], 'address', ARGV[3],
  'birth_date', ARGV[4], 'updated', ARGV[5], 'rev', rev + 1)
return {'ok', rev + 1}
"""

_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
local rev = redis.call('HGET', KEYS[2], 'rev')
if not rev or tonumber(rev) ~= tonumber(ARGV[1]) then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'identity') == 'verified' then return {'verified'} end
if ARGV[2] == 'verified' then
  redis.call('HSET', KEYS[1], 'identity', 'verified')
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'at', ARGV[3], 'who', ARGV[4], 'document_type', ARGV[5],
    'supporting_type', ARGV[6], 'images', ARGV[7])
end
redis.call('LPUSH', KEYS[4], ARGV[8])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[9]) - 1)
return {'ok'}
"""

_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
if redis.call('HGET', KEYS[1], 'identity') ~= 'verified' then return {'unverified'} end
redis.call('HDEL', KEYS[1], 'identity')
redis.call('DEL', KEYS[3])
redis.call('LPUSH', KEYS[4], ARGV[1])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[2]) - 1)
return {'ok'}
"""


class IdentityStoreError(Exception):
    """A refused change: "notfound" (no contract), "conflict" (holder changed meanwhile),
    "verified" (already verified), "unverified" (nothing to revoke), "no_holder"."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(slots=True, frozen=True)
class IdentityKeys:
    """The identity keys of one contract (its hash slot)."""

    contract_id: str

    @property
    def _base(self) -> str:
        return f"{k.PREFIX}:{k.tag(self.contract_id)}"

    @property
    def contract(self) -> str:
        return k.ContractKeys(self.contract_id).contract

    @property
    def holder(self) -> str:
        return f"{self._base}:holder"

    @property
    def verification(self) -> str:
        return f"{self._base}:idv"

    @property
    def log(self) -> str:
        return f"{self._base}:idlog"

    def all(self) -> list[str]:
        return [self.contract, self.holder, self.verification, self.log]


@dataclass(slots=True, frozen=True)
class StoredHolder:
    """The holder as stored, with the revision a verification is checked against."""

    holder: Holder
    rev: int


@dataclass(slots=True, frozen=True)
class Verification:
    """A contract's identity state (R-50) and its recent outcomes."""

    status: str  # "verified" | "unverified"
    at: float | None
    who: str | None
    document_type: str | None
    supporting_type: str | None
    image_sha256: tuple[str, ...]
    history: tuple[dict[str, Any], ...]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(at: float, who: str, outcome: str, refusal: Refusal | None, document_type: str | None) -> str:
    entry = {"at": at, "who": who, "outcome": outcome, "code": refusal.code if refusal else None,
             "rule": refusal.rule if refusal else None, "field": refusal.field if refusal else None,
             "document_type": document_type}
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


class IdentityStore:
    """Reads and writes the identity keys; works on a single Redis and on Redis Cluster."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._set_holder = client.register_script(_SET_HOLDER)
        self._record = client.register_script(_RECORD)
        self._revoke = client.register_script(_REVOKE)

    async def holder(self, contract_id: str) -> StoredHolder | None:
        """The registered holder, or None."""
        raw = await self.client.hgetall(IdentityKeys(contract_id).holder)
        if not raw:
            return None
        f = {_text(a): _text(b) for a, b in raw.items()}
        holder = Holder(f["family_name"], f["given_name"], f["address"], dt.date.fromisoformat(f["birth_date"]))
        return StoredHolder(holder, int(f["rev"]))

    async def set_holder(self, contract_id: str, holder: Holder, now: float, expected_rev: int | None) -> int:
        """Register or change the holder; expected_rev (if given) must be the stored revision."""
        keys = IdentityKeys(contract_id)
        args = [holder.family_name, holder.given_name, holder.address, holder.birth_date.isoformat(), repr(now),
                "" if expected_rev is None else expected_rev]
        res = await self._set_holder(keys=[keys.contract, keys.holder], args=args)
        return int(self._ok(res)[1])

    async def record(self, contract_id: str, rev: int, outcome: Verified | Refusal, who: str, now: float,
                     document_type: str | None) -> None:
        """Store a verdict checked against holder revision rev; a verification marks the contract."""
        if isinstance(outcome, Verified):
            fields = [VERIFIED, repr(now), who, outcome.document_type, outcome.supporting_type or "",
                      ",".join(outcome.image_sha256)]
            entry = _entry(now, who, VERIFIED, None, document_type)
        else:
            fields = ["refused", "", "", "", "", ""]
            entry = _entry(now, who, "refused", outcome, document_type)
        res = await self._record(keys=IdentityKeys(contract_id).all(), args=[rev, *fields, entry, LOG_KEEP])
        self._ok(res)

    async def revoke(self, contract_id: str, who: str, now: float) -> None:
        """Withdraw a verification (e.g. a forged document found): voice lines may not attach again."""
        entry = _entry(now, who, "revoked", None, None)
        self._ok(await self._revoke(keys=IdentityKeys(contract_id).all(), args=[entry, LOG_KEEP]))

    async def verification(self, contract_id: str) -> Verification:
        """The contract's identity state and its recent outcomes."""
        keys = IdentityKeys(contract_id)
        flag = await self.client.hget(keys.contract, "identity")
        raw = await self.client.hgetall(keys.verification)
        log = await self.client.lrange(keys.log, 0, LOG_KEEP - 1)
        f = {_text(a): _text(b) for a, b in raw.items()}
        verified = flag is not None and _text(flag) == VERIFIED
        return Verification(
            status=VERIFIED if verified else UNVERIFIED,
            at=float(f["at"]) if verified and "at" in f else None,
            who=f.get("who") if verified else None,
            document_type=f.get("document_type") if verified else None,
            supporting_type=(f.get("supporting_type") or None) if verified else None,
            image_sha256=tuple(x for x in f.get("images", "").split(",") if x) if verified else (),
            history=tuple(json.loads(_text(e)) for e in log),
        )

    @staticmethod
    def _ok(res: list[Any]) -> list[Any]:
        status = _text(res[0])
        if status != "ok":
            raise IdentityStoreError(status)
        return res
