"""Reading a submission (JSON, images in base64) into the dataclasses of quotad.identity.verify.

Pure: a parsed JSON value in, a Submission out, or InputError naming the field (a dotted path
such as ``document.images[0].data``). Shape and syntax faults are 400; a value out of its range
(an enum, a length, an image over its size) is 422 or 413, so the caller can tell them apart.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from quotad.identity.text import normalise
from quotad.identity.verify import BACK, FRONT, Holder, IdentityDocument, Image, Submission, SupportingDocument

MAX_IMAGE_BYTES = 4 * 1024 * 1024  # one decoded image
MAX_IMAGES = 2  # per document: front and back
# Two documents of two images each, in base64 (4/3), plus the JSON around them.
MAX_BODY = 4 * MAX_IMAGE_BYTES * 4 // 3 + 512 * 1024
MAX_NAME = 100
MAX_ADDRESS = 200
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_DOC_FIELDS = {"type": True, "family_name": True, "given_name": True, "birth_date": True, "address": True,
               "expires_on": True, "images": True, "individual_number_shown": False, "has_photo": False,
               "address_on_back": False, "dependant": False}
_SUP_FIELDS = {"type": True, "family_name": True, "given_name": True, "address": True, "issued_on": True,
               "images": True, "utility": False, "paid_by_credit_card": False, "individual_number_shown": False}
_HOLDER_FIELDS = {"family_name": True, "given_name": True, "address": True, "birth_date": True}


class InputError(Exception):
    """A submission that cannot be read: HTTP status, code, the field's path, a message."""

    def __init__(self, status: int, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field
        self.message = message


def _bad(code: str, field: str | None, message: str, status: int = 400) -> InputError:
    return InputError(status, code, field, message)


def parse_submission(data: Any) -> Submission:
    """The Submission in a request body ({"document": {...}, "supporting": {...} | null})."""
    body = _object(data, None, {"document": True, "supporting": False})
    supporting = body.get("supporting")
    return Submission(
        document=_document(body["document"]),
        supporting=None if supporting is None else _supporting(supporting),
    )


def parse_holder(data: Any) -> Holder:
    """The contract holder in a request body ({family_name, given_name, address, birth_date})."""
    body = _object(data, None, _HOLDER_FIELDS)
    return Holder(
        family_name=_text(body, "family_name", None, MAX_NAME),
        given_name=_text(body, "given_name", None, MAX_NAME),
        address=_text(body, "address", None, MAX_ADDRESS),
        birth_date=_date(body, "birth_date", None),
    )


def _document(data: Any) -> IdentityDocument:
    p = "document"
    d = _object(data, p, _DOC_FIELDS)
    return IdentityDocument(
        type=_text(d, "type", p, 64),
        family_name=_text(d, "family_name", p, MAX_NAME),
        given_name=_text(d, "given_name", p, MAX_NAME),
        birth_date=_date(d, "birth_date", p),
        address=None if d["address"] is None else _text(d, "address", p, MAX_ADDRESS),
        expires_on=None if d["expires_on"] is None else _date(d, "expires_on", p),
        images=_images(d["images"], f"{p}.images"),
        individual_number_shown=_flag(d, "individual_number_shown", p, False),
        has_photo=_flag(d, "has_photo", p, True),
        address_on_back=_flag(d, "address_on_back", p, False),
        dependant=_flag(d, "dependant", p, False),
    )


def _supporting(data: Any) -> SupportingDocument:
    p = "supporting"
    s = _object(data, p, _SUP_FIELDS)
    utility = s.get("utility")
    return SupportingDocument(
        type=_text(s, "type", p, 64),
        family_name=_text(s, "family_name", p, MAX_NAME),
        given_name=_text(s, "given_name", p, MAX_NAME),
        address=_text(s, "address", p, MAX_ADDRESS),
        issued_on=_date(s, "issued_on", p),
        images=_images(s["images"], f"{p}.images"),
        utility=None if utility is None else _text(s, "utility", p, 64),
        paid_by_credit_card=_flag(s, "paid_by_credit_card", p, False),
        individual_number_shown=_flag(s, "individual_number_shown", p, False),
    )


def _path(prefix: str | None, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _object(data: Any, prefix: str | None, fields: dict[str, bool]) -> dict[str, Any]:
    """data as an object with only known fields and every required one."""
    if not isinstance(data, dict):
        raise _bad("not_an_object", prefix, f"{prefix or 'the request body'} must be a JSON object")
    extra = sorted(set(data) - set(fields))
    if extra:
        raise _bad("unknown_field", _path(prefix, extra[0]), f"unknown field {extra[0]!r}")
    for name, required in fields.items():
        if required and name not in data:
            raise _bad("missing_field", _path(prefix, name), f"{_path(prefix, name)} is required")
    return data


def _text(d: dict[str, Any], name: str, prefix: str | None, limit: int) -> str:
    value = d[name]
    where = _path(prefix, name)
    if not isinstance(value, str):
        raise _bad("wrong_type", where, f"{where} must be a string")
    if not normalise(value):
        raise _bad("invalid_value", where, f"{where} must not be empty", 422)
    if len(value) > limit:
        raise _bad("invalid_value", where, f"{where} must be at most {limit} characters", 422)
    return value


def _date(d: dict[str, Any], name: str, prefix: str | None) -> dt.date:
    value = d[name]
    where = _path(prefix, name)
    try:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _bad("invalid_date", where, f"{where} must be a date YYYY-MM-DD") from None


def _flag(d: dict[str, Any], name: str, prefix: str | None, default: bool) -> bool:
    value = d.get(name, default)
    if not isinstance(value, bool):
        raise _bad("wrong_type", _path(prefix, name), f"{_path(prefix, name)} must be a boolean")
    return value


def _images(value: Any, where: str) -> tuple[Image, ...]:
    if not isinstance(value, list):
        raise _bad("wrong_type", where, f"{where} must be an array")
    if not 1 <= len(value) <= MAX_IMAGES:
        raise _bad("invalid_value", where, f"{where} must hold 1 to {MAX_IMAGES} images", 422)
    images = tuple(_image(item, f"{where}[{i}]") for i, item in enumerate(value))
    if len({i.side for i in images}) != len(images):
        raise _bad("invalid_value", where, f"{where}: one image per side", 422)
    return images


def _image(value: Any, where: str) -> Image:
    item = _object(value, where, {"side": True, "data": True})
    side, data = item["side"], item["data"]
    if side not in (FRONT, BACK):
        raise _bad("invalid_value", f"{where}.side", f"{where}.side must be front or back", 422)
    if not isinstance(data, str):
        raise _bad("wrong_type", f"{where}.data", f"{where}.data must be a base64 string")
    too_large = _bad("too_large", f"{where}.data", f"an image must be at most {MAX_IMAGE_BYTES} bytes", 413)
    if len(data) > (MAX_IMAGE_BYTES + 2) // 3 * 4:  # refused before decoding anything
        raise too_large
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("invalid_base64", f"{where}.data", f"{where}.data must be base64 (RFC 4648)") from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise too_large
    return Image(side=side, data=raw)
