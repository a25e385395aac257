"""The Redis key schema, in one place.

Every key of a contract carries the hash tag ``{c:<contract-id>}`` so that all of them live in
one hash slot (R-73): each Lua script touches one slot and runs unchanged on Redis Cluster.

Contract slot, for contract C and line M (an MSISDN):

    q:{c:C}:c              hash   plan, start, start_month, start_bundle, bundle, max_lines,
                                  nlines, bundle_month, seq, units:<YYYYMM>
    q:{c:C}:bk             hash   <bucket-id>.kind / .size / .left / .exp
    q:{c:C}:bx             zset   bucket-id scored by expiry instant (draw order, R-12; R-14)
    q:{c:C}:lines          set    MSISDNs of the contract
    q:{c:C}:ch             zset   charge history: "<bucket-id>|<json>" scored by time (R-11)
    q:{c:C}:l:M            hash   iccid, imsi, card_type, voice, status, coupon, held, speed, overrun
                                  (+ next_iccid, next_imsi, next_card_type, next_reason: a pending card;
                                  slot:<slot>: the latest session of an attach slot, attach.lua)
    q:{c:C}:live:M         set    session ids of the line's live sessions
    q:{c:C}:s:M:<sid>      hash   nas, imsi, ip, asid, gw, started, at, octets, chg, rep, stopped,
                                  gen, ttl_at (TTL; docs/data-model.md says what each field means)
    q:{c:C}:u:M:<YYYYMMDD> hash   high, low — usage per Japan day (TTL)
    q:{c:C}:holder, :idv, :idlog  identity verification (R-50, R-51): quotad/identity/records.py

Index keys, each in its own slot (looked up before the contract is known); the value is
"<contract-id>\\t<msisdn>", or "<contract-id>\\t<msisdn>\\t<token>" while an add_line is pending,
or "<contract-id>\\t<msisdn>\\tretired" for the ICCID/IMSI of a replaced card (never usable again):

    q:imsi:<imsi>   q:msisdn:<msisdn>   q:iccid:<iccid>

Each gateway's sessions, in the gateway's own slot (an Accounting-On/Off ends them all): a member
is a session owner (``session_owner``), added by the session's first attach or report and removed
by its end:

    q:{gw:<gateway>}:sessions   set

The IP pool has its own tag, which names the range (a new range is a new pool):

    q:{ip:<cidr>}:leases   zset   address (int) scored by lease expiry; 0 when free
    q:{ip:<cidr>}:owner    hash   address → session owner
    q:{ip:<cidr>}:byowner  hash   session owner → address
    q:{ip:<cidr>}:next     string offset of the next never-used address
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "q"
_FORBIDDEN = set("{}\t|;")


def check_id(value: str, what: str) -> str:
    """Refuse ids that would break the key schema (hash-tag braces, separators, empty)."""
    if not value or any(ch in _FORBIDDEN for ch in value) or len(value) > 128:
        raise ValueError(f"{what} {value!r} must be 1-128 characters without braces, tabs, '|' or ';'")
    return value


def tag(contract_id: str) -> str:
    """The hash tag shared by every key of a contract."""
    return f"{{c:{contract_id}}}"


@dataclass(slots=True, frozen=True)
class ContractKeys:
    """Keys of one contract (all in its slot)."""

    contract_id: str

    @property
    def _base(self) -> str:
        return f"{PREFIX}:{tag(self.contract_id)}"

    @property
    def contract(self) -> str:
        return f"{self._base}:c"

    @property
    def buckets(self) -> str:
        return f"{self._base}:bk"

    @property
    def expiries(self) -> str:
        return f"{self._base}:bx"

    @property
    def lines(self) -> str:
        return f"{self._base}:lines"

    @property
    def charges(self) -> str:
        return f"{self._base}:ch"

    def line(self, msisdn: str) -> str:
        return f"{self._base}:l:{msisdn}"

    def live(self, msisdn: str) -> str:
        return f"{self._base}:live:{msisdn}"

    def session(self, msisdn: str, session_id: str) -> str:
        return f"{self._base}:s:{msisdn}:{session_id}"

    def session_prefix(self, msisdn: str) -> str:
        return f"{self._base}:s:{msisdn}:"

    def usage(self, msisdn: str, day: str) -> str:
        return f"{self._base}:u:{msisdn}:{day}"

    def pool_keys(self) -> list[str]:
        """The three keys every contract script starts with: contract, buckets, expiries."""
        return [self.contract, self.buckets, self.expiries]

    def session_keys(self, msisdn: str, session_id: str, days: list[str]) -> list[str]:
        """KEYS of the attach and accounting scripts: the pool keys, the line, its live set, the
        line's usage on each day, and the session."""
        base = self._base
        return [*self.line_keys(msisdn, days), f"{base}:s:{msisdn}:{session_id}"]

    def line_keys(self, msisdn: str, days: list[str]) -> list[str]:
        """session_keys less the session's: the part of them that is the same for every session of
        the line on one day (runner.line_keys encodes it once)."""
        base = self._base
        return [f"{base}:c", f"{base}:bk", f"{base}:bx", f"{base}:l:{msisdn}", f"{base}:live:{msisdn}",
                *[f"{base}:u:{msisdn}:{day}" for day in days]]


def imsi_index(imsi: str) -> str:
    return f"{PREFIX}:imsi:{imsi}"


def msisdn_index(msisdn: str) -> str:
    return f"{PREFIX}:msisdn:{msisdn}"


def iccid_index(iccid: str) -> str:
    return f"{PREFIX}:iccid:{iccid}"


def index_value(contract_id: str, msisdn: str, token: str | None = None) -> str:
    """Value of an index key: committed, or pending with the claimer's token."""
    value = f"{contract_id}\t{msisdn}"
    return f"{value}\t{token}" if token else value


RETIRED = "retired"  # the token of a replaced card's index keys


def parse_index(value: str) -> tuple[str, str] | None:
    """(contract, msisdn) of a committed index value; None for a pending claim or a retired card."""
    parts = value.split("\t")
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def parse_card_index(value: str) -> tuple[str, str] | None:
    """(contract, msisdn) of a committed or retired index value: a replaced card still names its
    line, so an attach with it is refused as card_replaced (R-3); None for a pending claim."""
    parts = value.split("\t")
    if len(parts) == 3 and parts[2] == RETIRED:
        return parts[0], parts[1]
    return parse_index(value)


@dataclass(slots=True, frozen=True)
class IpPoolKeys:
    """Keys of the IP pool of one range (one slot)."""

    cidr: str

    @property
    def _base(self) -> str:
        return f"{PREFIX}:{{ip:{self.cidr}}}"

    def all(self) -> list[str]:
        return [f"{self._base}:leases", f"{self._base}:owner", f"{self._base}:byowner", f"{self._base}:next"]


def gateway_sessions(gateway: str) -> str:
    """The set of a gateway's sessions (aaa.sessionid.gateway_of names the gateway)."""
    return f"{PREFIX}:{{gw:{gateway}}}:sessions"


def session_owner(contract_id: str, msisdn: str, session_id: str) -> str:
    """Who holds an address: one live session of one line."""
    return f"{contract_id}\t{msisdn}\t{session_id}"
