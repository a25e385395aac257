"""Why an Access-Request is rejected: one spelling per reason (lower case, underscores, as every
label value of quotad's metrics), the label of ``quotad_radius_rejects_total{reason}``, the
``access_reject`` log field and, by ``text``, the Reply-Message the gateway is told. The attach
scripts (attach.lua, ps_attach.lua) answer with these same values."""

from __future__ import annotations

from enum import StrEnum


class Reject(StrEnum):
    UNKNOWN_APN = "unknown_apn"
    BAD_CREDENTIALS = "bad_credentials"
    ROAMING = "roaming"
    UNKNOWN_SIM = "unknown_sim"
    NO_SESSION = "no_session"  # a password-less re-authorization naming no live session
    SUSPENDED = "suspended"
    CARD_REPLACED = "card_replaced"
    CARD_PENDING = "card_pending"
    TERMINATED = "terminated"
    NOT_STARTED = "not_started"  # before the contract's start day
    IDENTITY_UNVERIFIED = "identity_unverified"
    NO_ADDRESS = "no_address"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    UNKNOWN = "unknown"  # a refusal this version does not know (told as the line not active)

    @property
    def text(self) -> str:
        """The Reply-Message."""
        return _TEXT[self]

    @classmethod
    def of(cls, reason: str | None) -> Reject:
        """The reason a store gave; UNKNOWN for one this version does not know."""
        try:
            return cls(reason or "unknown")
        except ValueError:
            return cls.UNKNOWN


_TEXT = {
    Reject.UNKNOWN_APN: "Unknown APN",
    Reject.BAD_CREDENTIALS: "Authentication failed",
    Reject.ROAMING: "Roaming is not allowed on this APN",
    Reject.UNKNOWN_SIM: "Unknown SIM",
    Reject.NO_SESSION: "No such live session to re-authorize",
    Reject.SUSPENDED: "Line is suspended",
    Reject.CARD_REPLACED: "SIM card has been replaced",
    Reject.CARD_PENDING: "SIM card is not active yet",
    Reject.TERMINATED: "Line is terminated",
    Reject.NOT_STARTED: "Line is not yet in service",
    Reject.IDENTITY_UNVERIFIED: "Identity not verified",
    Reject.NO_ADDRESS: "No address available",
    Reject.ADDRESS_NOT_ALLOWED: "Only the line's fixed address may be used",
    Reject.UNKNOWN: "Line is not active",
}
