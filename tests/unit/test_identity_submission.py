"""Reading a submission (R-51, R-72): JSON with base64 images into dataclasses, faults named by path."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotad.identity.submission import MAX_IMAGE_BYTES, InputError, parse_holder, parse_submission
from quotad.identity.verify import Holder, IdentityDocument, Image, Submission, SupportingDocument

DATA = b"\xff\xd8 any bytes \xff\xd9"  # parsing does not judge the image; verify() does
IMAGE = {"side": "front", "data": base64.b64encode(DATA).decode()}
DOC = {"type": "drivers_licence", "family_name": "山田", "given_name": "太郎", "birth_date": "1990-04-01",
       "address": None, "expires_on": None, "images": [IMAGE]}


def test_r51_document_defaults_and_optional_supporting() -> None:
    assert parse_submission({"document": DOC, "supporting": None}) == Submission(IdentityDocument(
        type="drivers_licence", family_name="山田", given_name="太郎", birth_date=dt.date(1990, 4, 1),
        address=None, expires_on=None, images=(Image("front", DATA),), individual_number_shown=False,
        has_photo=True, address_on_back=False, dependant=False))


def test_r51_supporting_read_with_its_fields() -> None:
    supporting = {"type": "utility_receipt", "family_name": "山田", "given_name": "太郎", "address": "東京都",
                  "issued_on": "2026-10-01", "images": [IMAGE], "utility": "water", "paid_by_credit_card": True}
    parsed = parse_submission({"document": DOC, "supporting": supporting}).supporting
    assert parsed == SupportingDocument("utility_receipt", "山田", "太郎", "東京都", dt.date(2026, 10, 1),
                                        (Image("front", DATA),), utility="water", paid_by_credit_card=True)


def fault(data: Any) -> tuple[int, str, str | None]:
    with pytest.raises(InputError) as info:
        parse_submission(data)
    return info.value.status, info.value.code, info.value.field


def test_r72_faults_named_by_path() -> None:
    assert fault({"document": {**DOC, "images": [{"side": "front"}]}}) == (
        400, "missing_field", "document.images[0].data")
    assert fault({"document": {**DOC, "images": [{"side": "back", "data": "@@"}]}}) == (
        400, "invalid_base64", "document.images[0].data")
    assert fault({"document": {**DOC, "images": "x"}}) == (400, "wrong_type", "document.images")
    assert fault({"document": {**DOC, "family_name": "x" * 101}}) == (422, "invalid_value", "document.family_name")
    assert fault({"document": {**DOC, "birth_date": "19900401"}}) == (400, "invalid_date", "document.birth_date")


def test_r72_image_size_bounded_before_decoding() -> None:
    at_limit = base64.b64encode(b"\0" * MAX_IMAGE_BYTES).decode()
    assert parse_submission({"document": {**DOC, "images": [{"side": "front", "data": at_limit}]}})
    over = base64.b64encode(b"\0" * (MAX_IMAGE_BYTES + 1)).decode()
    assert fault({"document": {**DOC, "images": [{"side": "front", "data": over}]}}) == (
        413, "too_large", "document.images[0].data")


def test_r51_holder_read() -> None:
    body = {"family_name": "山田", "given_name": "太郎", "address": "東京都", "birth_date": "1990-04-01"}
    assert parse_holder(body) == Holder("山田", "太郎", "東京都", dt.date(1990, 4, 1))
    with pytest.raises(InputError) as info:
        parse_holder({**body, "birth_date": None})
    assert (info.value.status, info.value.code, info.value.field) == (400, "invalid_date", "birth_date")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["document", "supporting", "x"]), JSON, max_size=3))
def test_r72_any_json_gives_a_submission_or_a_named_fault(data: dict[str, Any]) -> None:
    try:
        parse_submission(data)
    except InputError as exc:
        assert exc.status in (400, 413, 422) and exc.code


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from([*DOC, "has_photo", "dependant"]), JSON, max_size=9))
def test_r72_any_document_fields_give_a_document_or_a_named_fault(fields: dict[str, Any]) -> None:
    try:
        parse_submission({"document": {**DOC, **fields}})
    except InputError as exc:
        assert exc.status in (400, 413, 422) and exc.field is not None and exc.field.startswith("document")
