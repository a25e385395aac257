"""Request bodies: reading (size-bounded JSON), shape and type checks, and their JSON Schemas.

Shape and syntax faults (malformed JSON, not an object, missing or unknown fields, wrong types,
bad ids or dates) are 400; a well-formed value that is not acceptable (an enum, a minimum) is 422.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from quotad.api.errors import ApiError, bad_request, unprocessable

MAX_BODY = 64 * 1024
ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ID_PATTERN = "^[A-Za-z0-9_.-]{1,64}$"
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
CARD_TYPES = ("standard", "micro", "nano", "esim")
CARD_REASONS = ("type-change", "lost", "broken")

_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}


def check_id(value: str, field: str) -> str:
    """400 unless value is 1-64 characters of [A-Za-z0-9_.-]."""
    if not ID_RE.fullmatch(value):
        raise bad_request("invalid_id", f"{field} must be 1-64 characters of A-Z a-z 0-9 _ . -", field)
    return value


@dataclass(slots=True, frozen=True)
class Field:
    """One field of a request body."""

    name: str
    kind: type
    description: str
    is_id: bool = False
    is_date: bool = False
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    rule: str | None = None

    def check(self, value: Any) -> Any:
        """The value if it has the right type and form; ApiError naming the field otherwise."""
        # bool is an int subclass in Python, but not in JSON: true is not a number.
        if not isinstance(value, self.kind) or (self.kind is not bool and isinstance(value, bool)):
            raise bad_request("wrong_type", f"{self.name} must be a {_JSON_TYPES[self.kind]}", self.name, self.rule)
        if isinstance(value, str) and self.is_id:
            check_id(value, self.name)
        if isinstance(value, str) and self.is_date:
            return _date(value, self.name)
        if self.enum and value not in self.enum:
            raise unprocessable("invalid_value", f"{self.name} must be one of {', '.join(self.enum)}", self.name,
                                self.rule)
        if isinstance(value, int) and self.minimum is not None and value < self.minimum:
            raise unprocessable("invalid_value", f"{self.name} must be at least {self.minimum}", self.name,
                                self.rule)
        return value

    def json_schema(self) -> dict[str, Any]:
        """This field as a JSON Schema property."""
        schema: dict[str, Any] = {"type": _JSON_TYPES[self.kind], "description": self.description}
        if self.is_id:
            schema["pattern"] = ID_PATTERN
        if self.is_date:
            schema["format"] = "date"
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        return schema


def _date(value: str, field: str) -> dt.date:
    try:
        if not DATE_RE.fullmatch(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise bad_request("invalid_date", f"{field} must be a date YYYY-MM-DD", field) from None


@dataclass(slots=True, frozen=True)
class Body:
    """The schema of one request body: an object with exactly these fields, all required."""

    name: str
    fields: tuple[Field, ...]

    def validate(self, data: Any) -> dict[str, Any]:
        """The checked values by field name (dates as datetime.date)."""
        if not isinstance(data, dict):
            raise bad_request("not_an_object", "the request body must be a JSON object")
        known = {f.name for f in self.fields}
        extra = sorted(set(data) - known)
        if extra:
            raise bad_request("unknown_field", f"unknown field {extra[0]!r}", extra[0])
        for f in self.fields:
            if f.name not in data:
                raise bad_request("missing_field", f"{f.name} is required", f.name, f.rule)
        return {f.name: f.check(data[f.name]) for f in self.fields}

    def json_schema(self) -> dict[str, Any]:
        """This body as a JSON Schema object."""
        return {
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "required": [f.name for f in self.fields],
            "additionalProperties": False,
        }


NEW_CONTRACT = Body("NewContract", (
    Field("id", str, "Contract (service code) id.", is_id=True),
    Field("plan", str, "Plan name from the catalog (SPEC §3).", rule="§3"),
    Field("start_date", str, "Service start date (Japan calendar), YYYY-MM-DD; R-10 pro-rates its bundle.",
          is_date=True, rule="R-10"),
))
NEW_LINE = Body("NewLine", (
    Field("msisdn", str, "Phone number of the line.", is_id=True),
    Field("iccid", str, "ICCID of the line's card.", is_id=True),
    Field("imsi", str, "IMSI of the line's card.", is_id=True),
    Field("card_type", str, "Card type.", enum=CARD_TYPES, rule="R-32"),
    Field("voice", bool, "Voice line (R-50) or data only."),
))
CHARGE = Body("ChargeRequest", (
    Field("units", int, "Coupon units of 100 MB to buy (R-11).", minimum=1, rule="R-11"),
))
NEW_CARD = Body("NewCard", (
    Field("iccid", str, "ICCID of the new card.", is_id=True, rule="R-32"),
    Field("imsi", str, "IMSI of the new card.", is_id=True, rule="R-32"),
    Field("card_type", str, "Card type of the new card.", enum=CARD_TYPES, rule="R-32"),
    Field("reason", str, "type-change (R-32: the old card works until the new one is activated), lost or "
          "broken (R-33: the line is suspended until then).", enum=CARD_REASONS, rule="R-32"),
))
COUPON = Body("CouponSwitch", (
    Field("on", bool, "Coupon switch: true for high speed, false for 200 kbps (R-21).", rule="R-21"),
))


async def read_json(request: web.Request, limit: int = MAX_BODY) -> Any:
    """The request body parsed as JSON; 413 past limit bytes, 400 if it is not JSON."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    raw = bytearray()
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        raw.extend(chunk)
        if len(raw) > limit:
            raise _too_large(limit)
    try:
        return json.loads(bytes(raw))
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and over-long integers too; deep nesting is RecursionError.
        raise bad_request("malformed_json", "the request body is not valid JSON") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the request body must be at most {limit} bytes")
