"""The documents an identity verification accepts (R-51, seed 001 "本人確認対象書類").

Each identity document type records what the seed asks of it: whether it must be within its
expiry (and so must show one), whether it must show the address, whether a supporting document
is always needed, and which supporting documents it takes. Documents the seed names as not
accepted are kept too, so a submission of one is refused by name rather than as "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Address(Enum):
    """What a document type says about the holder's address."""

    REQUIRED = "required"  # the document shows it; missing → refused
    OR_SUPPORTING = "or_supporting"  # if it does not show it, a supporting document is needed


@dataclass(slots=True, frozen=True)
class DocumentType:
    """One identity document type of the seed's list."""

    code: str
    name_ja: str
    expiry_required: bool  # "有効期限内のもの": must show an expiry, and be valid on the check date
    address: Address = Address.REQUIRED
    supporting_always: bool = False  # "本人確認補助書類が必要"
    supporting: tuple[str, ...] = ("resident_record", "utility_receipt")
    photo_required: bool = False  # "顔写真付きカードのみ有効"
    front_only: bool = False  # "表面のみ": the back shows the individual number


@dataclass(slots=True, frozen=True)
class SupportingType:
    """One supporting document type (本人確認補助書類)."""

    code: str
    name_ja: str


RESIDENT_RECORD = "resident_record"
UTILITY_RECEIPT = "utility_receipt"
RESIDENCE_CERTIFICATE = "residence_certificate"

DOCUMENTS: dict[str, DocumentType] = {d.code: d for d in (
    DocumentType("drivers_licence", "運転免許証", expiry_required=True),
    DocumentType("my_number_card", "個人番号カード", expiry_required=True, front_only=True),
    DocumentType("japanese_passport", "日本国パスポート", expiry_required=True),
    DocumentType("health_insurance_card", "被保険者証(国民健康保険/健康保険)", expiry_required=True),
    DocumentType("special_permanent_resident_certificate", "特別永住者証明書", expiry_required=True),
    DocumentType("residence_card", "在留カード", expiry_required=True),
    DocumentType("alien_registration_certificate", "外国人登録証明書", expiry_required=True),
    DocumentType("basic_resident_register_card", "住民基本台帳カード", expiry_required=True,
                 photo_required=True),
    # Always with a supporting document, which shows the registered address: their own may be missing.
    DocumentType("driving_record_certificate", "運転経歴証明書", expiry_required=False, supporting_always=True,
                 address=Address.OR_SUPPORTING),
    DocumentType("physical_disability_certificate", "身体障がい者手帳", expiry_required=True,
                 address=Address.OR_SUPPORTING),
    DocumentType("mental_disability_certificate", "精神障がい者保健福祉手帳", expiry_required=True),
    DocumentType("rehabilitation_certificate", "療育手帳", expiry_required=False, supporting_always=True,
                 address=Address.OR_SUPPORTING),
    DocumentType("mofa_identification_card", "外務省発行の身分証明票", expiry_required=False,
                 supporting_always=True, supporting=(RESIDENCE_CERTIFICATE,), address=Address.OR_SUPPORTING),
)}

# Named by the seed as not accepted: refused with their own reason.
NOT_ACCEPTED: dict[str, str] = {
    "notification_card": "the individual number notification card (通知カード) is not an identity document",
    "international_driving_permit": "an international driving permit is not accepted (国際免許証は除く)",
    **{code: "a supporting document alone cannot verify identity (補助書類のみでは本人確認はできません)"
       for code in ("resident_record", "utility_receipt", "residence_certificate")},
}

SUPPORTING: dict[str, SupportingType] = {s.code: s for s in (
    SupportingType(RESIDENT_RECORD, "住民票"),
    SupportingType(UTILITY_RECEIPT, "公共料金領収書"),
    SupportingType(RESIDENCE_CERTIFICATE, "住居証明書"),
)}

# Utility receipts: electricity, city gas and water only (propane gas and others are not).
UTILITIES = ("electricity", "city_gas", "water")
SUPPORTING_MONTHS = 3  # "発行から3ヵ月以内"
