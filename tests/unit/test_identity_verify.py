# ruff: noqa: RUF001  (full-width letters and digits are what these tests are about)
"""R-51 (seed 001): the verdict on a submission, rule by rule, with exact dates and codes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from quotad.identity.verify import (
    Holder,
    IdentityDocument,
    Image,
    Refusal,
    Submission,
    SupportingDocument,
    Verified,
    months_before,
    verify,
)

DATA = Path(__file__).resolve().parent.parent / "data"
JPEG = (DATA / "baseline.jpg").read_bytes()
JPEG2 = (DATA / "progressive.jpg").read_bytes()
PNG = (DATA / "python.png").read_bytes()
JPEG_SHA = "0171178ae901e108f56305aff7e36268a690bc49933a24b1aaa587fda00f4d3b"
JPEG2_SHA = "a584e74203bcf974f21133b75129b810b33afd67e16767812e9b2f34a6e9393d"

TODAY = dt.date(2026, 11, 23)
HOLDER = Holder("山田", "太郎", "東京都千代田区神田神保町1-105", dt.date(1990, 4, 1))
OLD_ADDRESS = "大阪府大阪市北区梅田3-1"
FRONT = Image("front", JPEG)
BACK = Image("back", JPEG2)

LICENCE = IdentityDocument(
    type="drivers_licence", family_name="山田", given_name="太郎", birth_date=dt.date(1990, 4, 1),
    address="東京都千代田区神田神保町1-105", expires_on=dt.date(2028, 5, 1), images=(FRONT,),
)
RECORD = SupportingDocument(
    type="resident_record", family_name="山田", given_name="太郎", address="東京都千代田区神田神保町1-105",
    issued_on=dt.date(2026, 10, 1), images=(Image("front", JPEG2),),
)


def check(document: IdentityDocument = LICENCE, supporting: SupportingDocument | None = None,
          today: dt.date = TODAY) -> Verified | Refusal:
    return verify(HOLDER, Submission(document, supporting), today)


def refusal(outcome: Verified | Refusal) -> tuple[str, str, str, bool]:
    assert isinstance(outcome, Refusal), outcome
    return outcome.code, outcome.field, outcome.rule, outcome.discard


# -- accepted ------------------------------------------------------------------------------------------


def test_r51_matching_drivers_licence_is_verified_with_image_hash() -> None:
    assert check() == Verified("drivers_licence", None, (JPEG_SHA,))


def test_r51_names_and_address_compared_after_nfkc_spaces_and_case() -> None:
    holder = Holder("ヤマダ", "Taro", "東京都千代田区神田神保町1-105", dt.date(1990, 4, 1))
    doc = replace(LICENCE, family_name="ﾔﾏﾀﾞ", given_name="ＴＡＲＯ　", address="東京都千代田区　神田神保町１－１０５")
    assert verify(holder, Submission(doc), TODAY) == Verified("drivers_licence", None, (JPEG_SHA,))


@pytest.mark.parametrize("doc_type", [
    "drivers_licence", "my_number_card", "japanese_passport", "health_insurance_card",
    "special_permanent_resident_certificate", "residence_card", "alien_registration_certificate",
    "basic_resident_register_card", "physical_disability_certificate", "mental_disability_certificate",
])
def test_r51_each_accepted_document_alone_verifies(doc_type: str) -> None:
    assert check(replace(LICENCE, type=doc_type)) == Verified(doc_type, None, (JPEG_SHA,))


@pytest.mark.parametrize("doc_type", ["driving_record_certificate", "rehabilitation_certificate"])
def test_r51_documents_needing_support_verify_with_it(doc_type: str) -> None:
    doc = replace(LICENCE, type=doc_type, expires_on=None)
    assert refusal(check(doc)) == ("supporting_required", "supporting", "R-51", False)
    assert check(doc, RECORD) == Verified(doc_type, "resident_record", (JPEG_SHA, JPEG2_SHA))


def test_r51_mofa_card_needs_a_certificate_of_residence() -> None:
    doc = replace(LICENCE, type="mofa_identification_card", expires_on=None)
    certificate = replace(RECORD, type="residence_certificate", issued_on=dt.date(2025, 1, 10))
    assert check(doc, certificate) == Verified("mofa_identification_card", "residence_certificate",
                                               (JPEG_SHA, JPEG2_SHA))
    assert refusal(check(doc, RECORD)) == ("supporting_not_accepted", "supporting.type", "R-51", False)
    # The card need not show an address: the certificate of residence does.
    assert isinstance(check(replace(doc, address=None), certificate), Verified)
    assert refusal(check(replace(doc, address=None))) == ("supporting_required", "supporting", "R-51", False)


# -- the document ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc_type", ["notification_card", "international_driving_permit", "student_id",
                                      "resident_record", "utility_receipt"])
def test_r51_documents_not_on_the_list_refused(doc_type: str) -> None:
    assert refusal(check(replace(LICENCE, type=doc_type))) == (
        "document_not_accepted", "document.type", "R-51", False)


def test_r51_a_supporting_document_alone_does_not_verify() -> None:
    outcome = check(replace(LICENCE, type="resident_record"))
    assert isinstance(outcome, Refusal)
    assert outcome.message == ("a supporting document alone cannot verify identity "
                               "(補助書類のみでは本人確認はできません)")


def test_r51_valid_on_its_expiry_day_refused_the_day_after() -> None:
    assert isinstance(check(replace(LICENCE, expires_on=TODAY)), Verified)
    assert refusal(check(replace(LICENCE, expires_on=dt.date(2026, 11, 22)))) == (
        "document_expired", "document.expires_on", "R-51", False)


def test_r51_expiry_required_where_the_seed_says_within_expiry() -> None:
    assert refusal(check(replace(LICENCE, expires_on=None))) == (
        "expiry_missing", "document.expires_on", "R-51", False)
    # A health insurance card must be within its expiry too; one past it is refused.
    card = replace(LICENCE, type="health_insurance_card", expires_on=dt.date(2026, 3, 31))
    assert refusal(check(card))[0] == "document_expired"


def test_r51_resident_register_card_only_with_photo() -> None:
    card = replace(LICENCE, type="basic_resident_register_card", has_photo=False)
    assert refusal(check(card)) == ("photo_required", "document.has_photo", "R-51", False)


def test_r51_passport_must_show_an_address() -> None:
    passport = replace(LICENCE, type="japanese_passport", address=None)
    assert refusal(check(passport, RECORD)) == ("address_missing", "document.address", "R-51", False)


def test_r51_disability_certificate_without_address_needs_support() -> None:
    cert = replace(LICENCE, type="physical_disability_certificate", address=None)
    assert refusal(check(cert)) == ("supporting_required", "supporting", "R-51", False)
    assert check(cert, RECORD) == Verified("physical_disability_certificate", "resident_record",
                                           (JPEG_SHA, JPEG2_SHA))


# -- the person ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"family_name": "髙田"}, "document.family_name"),
    ({"family_name": "太郎", "given_name": "山田"}, "document.family_name"),  # order swapped
    ({"given_name": "太朗"}, "document.given_name"),
])
def test_r51_name_must_match(change: dict[str, str], field: str) -> None:
    assert refusal(check(replace(LICENCE, **change))) == ("name_mismatch", field, "R-51", False)  # type: ignore[arg-type]


def test_r51_birth_date_must_match() -> None:
    doc = replace(LICENCE, birth_date=dt.date(1990, 4, 2))
    assert refusal(check(doc)) == ("birth_date_mismatch", "document.birth_date", "R-51", False)


# -- address and the supporting document -----------------------------------------------------------------


def test_r51_address_differs_supporting_required() -> None:
    moved = replace(LICENCE, address=OLD_ADDRESS)
    assert refusal(check(moved)) == ("supporting_required", "supporting", "R-51", False)
    assert check(moved, RECORD) == Verified("drivers_licence", "resident_record", (JPEG_SHA, JPEG2_SHA))


def test_r51_supporting_issued_within_3_months_boundary() -> None:
    moved = replace(LICENCE, address=OLD_ADDRESS)
    assert isinstance(check(moved, replace(RECORD, issued_on=dt.date(2026, 8, 23))), Verified)
    assert refusal(check(moved, replace(RECORD, issued_on=dt.date(2026, 8, 22)))) == (
        "supporting_too_old", "supporting.issued_on", "R-51", False)
    assert isinstance(check(moved, replace(RECORD, issued_on=TODAY)), Verified)
    assert refusal(check(moved, replace(RECORD, issued_on=dt.date(2026, 11, 24)))) == (
        "issue_date_in_future", "supporting.issued_on", "R-51", False)


def test_r51_three_months_before_a_month_end_clamps() -> None:
    moved = replace(LICENCE, address=OLD_ADDRESS, expires_on=dt.date(2030, 1, 1))
    today = dt.date(2026, 5, 31)
    assert isinstance(check(moved, replace(RECORD, issued_on=dt.date(2026, 2, 28)), today), Verified)
    assert refusal(check(moved, replace(RECORD, issued_on=dt.date(2026, 2, 27)), today))[0] == "supporting_too_old"


@pytest.mark.parametrize(("day", "expected"), [
    (dt.date(2026, 11, 23), dt.date(2026, 8, 23)),
    (dt.date(2026, 5, 31), dt.date(2026, 2, 28)),
    (dt.date(2024, 5, 31), dt.date(2024, 2, 29)),
    (dt.date(2026, 2, 15), dt.date(2025, 11, 15)),
    (dt.date(2026, 12, 31), dt.date(2026, 9, 30)),
])
def test_r51_months_before(day: dt.date, expected: dt.date) -> None:
    assert months_before(day, 3) == expected


def test_r51_utility_receipt_electricity_city_gas_water_only() -> None:
    moved = replace(LICENCE, address=OLD_ADDRESS)
    receipt = replace(RECORD, type="utility_receipt", utility="electricity")
    assert check(moved, receipt) == Verified("drivers_licence", "utility_receipt", (JPEG_SHA, JPEG2_SHA))
    assert isinstance(check(moved, replace(receipt, utility="city_gas")), Verified)
    assert isinstance(check(moved, replace(receipt, utility="water")), Verified)
    for other in ("propane_gas", "telephone", None):
        assert refusal(check(moved, replace(receipt, utility=other))) == (
            "utility_not_accepted", "supporting.utility", "R-51", False)


def test_r51_utility_receipt_paid_by_credit_card_refused() -> None:
    receipt = replace(RECORD, type="utility_receipt", utility="water", paid_by_credit_card=True)
    assert refusal(check(replace(LICENCE, address=OLD_ADDRESS), receipt)) == (
        "receipt_paid_by_credit_card", "supporting.paid_by_credit_card", "R-51", False)


def test_r51_supporting_must_show_holder_name_and_registered_address() -> None:
    moved = replace(LICENCE, address=OLD_ADDRESS)
    assert refusal(check(moved, replace(RECORD, given_name="花子"))) == (
        "name_mismatch", "supporting.family_name", "R-51", False)
    assert refusal(check(moved, replace(RECORD, address=OLD_ADDRESS))) == (
        "address_mismatch", "supporting.address", "R-51", False)


# -- the individual number ---------------------------------------------------------------------------------


def test_r51_individual_number_shown_refused_and_discarded() -> None:
    assert refusal(check(replace(LICENCE, individual_number_shown=True))) == (
        "individual_number_shown", "document.individual_number_shown", "R-51", True)
    record = replace(RECORD, individual_number_shown=True)
    assert refusal(check(replace(LICENCE, address=OLD_ADDRESS), record)) == (
        "individual_number_shown", "supporting.individual_number_shown", "R-51", True)


def test_r51_my_number_card_front_only() -> None:
    card = replace(LICENCE, type="my_number_card")
    assert isinstance(check(card), Verified)
    assert refusal(check(replace(card, images=(FRONT, BACK)))) == (
        "individual_number_shown", "document.images[1].side", "R-51", True)


def test_r51_individual_number_in_transcribed_text_refused() -> None:
    doc = replace(LICENCE, address="東京都千代田区神田神保町1-105 1234 5678 9018")
    assert refusal(check(doc)) == ("individual_number_shown", "document.address", "R-51", True)
    # Twelve digits with a wrong check digit are just a different address.
    doc = replace(LICENCE, address="東京都千代田区神田神保町1-105 1234 5678 9012")
    assert refusal(check(doc))[0] == "supporting_required"


def test_r51_individual_number_checked_before_anything_else() -> None:
    doc = replace(LICENCE, type="notification_card", images=(Image("front", PNG),), individual_number_shown=True)
    assert refusal(check(doc))[:2] == ("individual_number_shown", "document.individual_number_shown")


# -- images --------------------------------------------------------------------------------------------------


def test_r51_images_must_be_jpeg_by_content() -> None:
    assert refusal(check(replace(LICENCE, images=(Image("front", PNG),)))) == (
        "not_jpeg", "document.images[0].data", "R-51", False)
    record = replace(RECORD, images=(Image("front", PNG),))
    assert refusal(check(replace(LICENCE, address=OLD_ADDRESS), record)) == (
        "not_jpeg", "supporting.images[0].data", "R-51", False)


def test_r51_front_required_and_back_when_it_carries_address_or_dependant_name() -> None:
    assert refusal(check(replace(LICENCE, images=(BACK,)))) == ("image_missing", "document.images", "R-51", False)
    assert refusal(check(replace(LICENCE, address_on_back=True)))[:2] == ("image_missing", "document.images")
    card = replace(LICENCE, type="health_insurance_card", dependant=True)
    assert refusal(check(card))[:2] == ("image_missing", "document.images")
    assert check(replace(card, images=(FRONT, BACK))) == Verified("health_insurance_card", None,
                                                                  (JPEG_SHA, JPEG2_SHA))
