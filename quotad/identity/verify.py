"""The identity check of one submission (R-51), as a pure function: facts in, verdict out.

quotad does not read images: a submission carries the images and, transcribed from them, what
the documents show (type, name, address, birth date, expiry or issue date). This module decides
whether those facts make a verification of the contract holder, and checks that every image is
a JPEG by its content. The checks run in a fixed order and the first failure is the answer:

  1. an individual number (My Number) shown anywhere          → refused, images discarded
  2. every image a JPEG (by content), the sides each type needs
  3. the document type accepted; valid on the check date; photo where required
  4. name, birth date, then address against the contract holder (normalised, quotad.identity.text)
  5. the supporting document, when the address differs or the type needs one: an accepted type,
     issued within 3 months (resident record, utility receipt), utility electricity / city gas /
     water paid otherwise than by credit card, the holder's name and registered address
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from quotad.identity import documents as docs
from quotad.identity.jpeg import NotJpeg, check_jpeg
from quotad.identity.text import same, shows_individual_number

RULE = "R-51"
FRONT, BACK = "front", "back"


@dataclass(slots=True, frozen=True)
class Holder:
    """The contract holder as registered: what every document is compared with."""

    family_name: str
    given_name: str
    address: str
    birth_date: dt.date


@dataclass(slots=True, frozen=True)
class Image:
    """One uploaded image: which side of the document, and the bytes."""

    side: str
    data: bytes = field(repr=False)


@dataclass(slots=True, frozen=True)
class IdentityDocument:
    """An identity document as transcribed from its images."""

    type: str
    family_name: str
    given_name: str
    birth_date: dt.date
    address: str | None
    expires_on: dt.date | None
    images: tuple[Image, ...]
    individual_number_shown: bool = False
    has_photo: bool = True
    address_on_back: bool = False  # "住所等の記載が裏面にある場合、裏面の画像も必要"
    dependant: bool = False  # insured dependant: the side with their own name is needed too


@dataclass(slots=True, frozen=True)
class SupportingDocument:
    """A supporting document (本人確認補助書類) as transcribed from its images."""

    type: str
    family_name: str
    given_name: str
    address: str
    issued_on: dt.date
    images: tuple[Image, ...]
    utility: str | None = None
    paid_by_credit_card: bool = False
    individual_number_shown: bool = False


@dataclass(slots=True, frozen=True)
class Submission:
    """One identity document and, where needed, one supporting document."""

    document: IdentityDocument
    supporting: SupportingDocument | None = None


@dataclass(slots=True, frozen=True)
class Refusal:
    """Why a submission is refused: a stable code, the rule, the input at fault, a message."""

    code: str
    field: str
    message: str
    rule: str = RULE
    discard: bool = False  # the images must be dropped unseen (an individual number is shown)


@dataclass(slots=True, frozen=True)
class Verified:
    """An accepted submission: which documents, and the SHA-256 of each image checked."""

    document_type: str
    supporting_type: str | None
    image_sha256: tuple[str, ...]


class Refused(Exception):
    """Raised inside the checks; verify() turns it into a Refusal."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


def _refuse(code: str, field_name: str, message: str, *, discard: bool = False) -> Refused:
    return Refused(Refusal(code, field_name, message, discard=discard))


def verify(holder: Holder, submission: Submission, today: dt.date) -> Verified | Refusal:
    """R-51: the verdict on a submission for this holder, checked on `today` (a Japan date)."""
    try:
        _check_individual_number(submission)
        _check_images(submission)
        kind = _check_document(submission.document, today)
        _check_person(holder, submission.document)
        _check_supporting(holder, submission, kind, today)
    except Refused as exc:
        return exc.refusal
    return Verified(
        document_type=submission.document.type,
        supporting_type=submission.supporting.type if submission.supporting else None,
        image_sha256=tuple(hashlib.sha256(i.data).hexdigest() for i in _all_images(submission)),
    )


def _all_images(submission: Submission) -> tuple[Image, ...]:
    extra = submission.supporting.images if submission.supporting else ()
    return submission.document.images + extra


# -- 1. the individual number ----------------------------------------------------------------------


def _check_individual_number(submission: Submission) -> None:
    """Refused and discarded: an individual number shown on any document or in any transcribed
    text, or the back of an individual number card (which carries the number)."""
    d, s = submission.document, submission.supporting
    if d.individual_number_shown:
        raise _number_shown("document.individual_number_shown")
    if s is not None and s.individual_number_shown:
        raise _number_shown("supporting.individual_number_shown")
    kind = docs.DOCUMENTS.get(d.type)
    if kind is not None and kind.front_only:
        for i, image in enumerate(d.images):
            if image.side != FRONT:
                raise _number_shown(f"document.images[{i}].side")
    for name, value in _texts(submission):
        if shows_individual_number(value):
            raise _number_shown(name)


def _texts(submission: Submission) -> list[tuple[str, str]]:
    d, s = submission.document, submission.supporting
    out = [("document.family_name", d.family_name), ("document.given_name", d.given_name),
           ("document.address", d.address or "")]
    if s is not None:
        out += [("supporting.family_name", s.family_name), ("supporting.given_name", s.given_name),
                ("supporting.address", s.address)]
    return out


def _number_shown(field_name: str) -> Refused:
    return _refuse("individual_number_shown", field_name,
                   "a document showing an individual number (My Number) is not accepted; the images were "
                   "discarded: upload them again without the number", discard=True)


# -- 2. images -------------------------------------------------------------------------------------


def _check_images(submission: Submission) -> None:
    d, s = submission.document, submission.supporting
    _check_jpegs("document", d.images)
    sides = {i.side for i in d.images}
    if FRONT not in sides:
        raise _refuse("image_missing", "document.images", "the front of the identity document is required")
    if (d.address_on_back or d.dependant) and BACK not in sides:
        why = "its address" if d.address_on_back else "the dependant's own name"
        raise _refuse("image_missing", "document.images", f"the back of the document is required: it shows {why}")
    if s is not None:
        _check_jpegs("supporting", s.images)
        if not s.images:
            raise _refuse("image_missing", "supporting.images", "the supporting document's image is required")


def _check_jpegs(prefix: str, images: tuple[Image, ...]) -> None:
    for i, image in enumerate(images):
        try:
            check_jpeg(image.data)
        except NotJpeg as exc:
            raise _refuse("not_jpeg", f"{prefix}.images[{i}].data", f"uploads are JPEG only: {exc}") from None


# -- 3. the identity document ----------------------------------------------------------------------


def _check_document(d: IdentityDocument, today: dt.date) -> docs.DocumentType:
    if d.type in docs.NOT_ACCEPTED:
        raise _refuse("document_not_accepted", "document.type", docs.NOT_ACCEPTED[d.type])
    kind = docs.DOCUMENTS.get(d.type)
    if kind is None:
        raise _refuse("document_not_accepted", "document.type", f"{d.type!r} is not an accepted identity document")
    if d.expires_on is None and kind.expiry_required:
        raise _refuse("expiry_missing", "document.expires_on", f"a {d.type} must show its expiry date")
    if d.expires_on is not None and d.expires_on < today:
        raise _refuse("document_expired", "document.expires_on",
                      f"the document expired on {d.expires_on.isoformat()}: it must be valid on {today.isoformat()}")
    if kind.photo_required and not d.has_photo:
        raise _refuse("photo_required", "document.has_photo", f"only a {d.type} with a photo is accepted")
    if d.address is None and kind.address is docs.Address.REQUIRED:
        raise _refuse("address_missing", "document.address", f"a {d.type} must show the holder's address")
    return kind


def _check_person(holder: Holder, d: IdentityDocument) -> None:
    if not same(d.family_name, holder.family_name):
        raise _refuse("name_mismatch", "document.family_name", "the family name differs from the contract holder's")
    if not same(d.given_name, holder.given_name):
        raise _refuse("name_mismatch", "document.given_name", "the given name differs from the contract holder's")
    if d.birth_date != holder.birth_date:
        raise _refuse("birth_date_mismatch", "document.birth_date",
                      "the birth date differs from the contract holder's")


# -- 5. the supporting document ----------------------------------------------------------------------


def supporting_needed(holder: Holder, d: IdentityDocument, kind: docs.DocumentType) -> str | None:
    """Why this document needs a supporting document, or None if it does not."""
    if kind.supporting_always:
        return f"a {d.type} is accepted only with a supporting document"
    if d.address is None:
        return f"this {d.type} shows no address"
    if not same(d.address, holder.address):
        return "the document's address differs from the contract holder's"
    return None


def _check_supporting(holder: Holder, submission: Submission, kind: docs.DocumentType, today: dt.date) -> None:
    reason = supporting_needed(holder, submission.document, kind)
    s = submission.supporting
    if s is None:
        if reason is not None:
            raise _refuse("supporting_required", "supporting", f"{reason}: a supporting document is required")
        return
    if s.type not in kind.supporting:
        raise _refuse("supporting_not_accepted", "supporting.type",
                      f"with a {kind.code} the supporting document must be one of {', '.join(kind.supporting)}")
    if s.type == docs.UTILITY_RECEIPT:
        _check_utility(s)
    _check_issued(s, today)
    if not (same(s.family_name, holder.family_name) and same(s.given_name, holder.given_name)):
        raise _refuse("name_mismatch", "supporting.family_name",
                      "the supporting document's name differs from the contract holder's")
    if not same(s.address, holder.address):
        raise _refuse("address_mismatch", "supporting.address",
                      "the supporting document must show the contract holder's registered address")


def _check_utility(s: SupportingDocument) -> None:
    if s.utility not in docs.UTILITIES:
        raise _refuse("utility_not_accepted", "supporting.utility",
                      f"utility receipts are accepted for {', '.join(docs.UTILITIES)} only")
    if s.paid_by_credit_card:
        raise _refuse("receipt_paid_by_credit_card", "supporting.paid_by_credit_card",
                      "a utility receipt of a credit card payment is not accepted")


def _check_issued(s: SupportingDocument, today: dt.date) -> None:
    if s.issued_on > today:
        raise _refuse("issue_date_in_future", "supporting.issued_on", "the issue date is after today")
    if s.type == docs.RESIDENCE_CERTIFICATE:
        return  # the seed sets no age limit on the MOFA card's certificate of residence
    earliest = months_before(today, docs.SUPPORTING_MONTHS)
    if s.issued_on < earliest:
        raise _refuse("supporting_too_old", "supporting.issued_on",
                      f"the supporting document must be issued within {docs.SUPPORTING_MONTHS} months: "
                      f"on or after {earliest.isoformat()}")


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier, clamped to that month's last day
    (3 months before 31 May is 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))
