"""The RADIUS edge's vocabularies: why a request was dropped, how a CoA/Disconnect ended, why a
reply to one was discarded. One spelling each (lower case, underscores, as every label value of
quotad's metrics): the metric label values and the log fields are these values."""

from __future__ import annotations

from enum import StrEnum


class Drop(StrEnum):
    """Why a request got no answer (``quotad_radius_dropped_total{reason}``)."""

    UNKNOWN_CLIENT = "unknown_client"
    MALFORMED = "malformed"
    WRONG_CODE = "wrong_code"
    NO_MESSAGE_AUTHENTICATOR = "no_message_authenticator"
    BAD_AUTHENTICATOR = "bad_authenticator"
    OVERLOAD = "overload"
    NO_REPLY = "no_reply"
    DUPLICATE = "duplicate"
    PROXY_STATE = "proxy_state"
    NOT_READY = "not_ready"


class CoaOutcome(StrEnum):
    """How a CoA or Disconnect request ended (``quotad_coa_requests_total{outcome}``)."""

    ACK = "ack"
    NAK = "nak"
    TIMEOUT = "timeout"
    DROPPED_QUEUE_FULL = "dropped_queue_full"
    ERROR = "error"


class BadReply(StrEnum):
    """Why a datagram on the CoA client's socket was discarded (``quotad_coa_bad_replies_total``)."""

    UNKNOWN_SOURCE = "unknown_source"
    MALFORMED = "malformed"
    UNMATCHED = "unmatched"
    UNEXPECTED_CODE = "unexpected_code"
    BAD_AUTHENTICATOR = "bad_authenticator"
    BAD_MESSAGE_AUTHENTICATOR = "bad_message_authenticator"
