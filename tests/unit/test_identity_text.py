# ruff: noqa: RUF001  (full-width letters and digits are what these tests are about)
"""R-51 comparisons: NFKC, spaces of both widths, case — and the individual number's check digit."""

from __future__ import annotations

import pytest

from quotad.identity.text import is_individual_number, normalise, same, shows_individual_number


@pytest.mark.parametrize(("value", "expected"), [
    ("山田　太郎", "山田太郎"),  # full-width space
    (" 山田 太郎 ", "山田太郎"),  # half-width spaces
    ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"),  # half-width katakana, voiced mark composed
    ("ＹＡＭＡＤＡ　Ｔａｒｏ", "yamadataro"),  # full-width Latin, case folded
    ("神保町１－１０５", "神保町1-105"),  # full-width digits and hyphen-minus
    ("Straße", "strasse"),  # case folding, not just lowering
])
def test_r51_normalise(value: str, expected: str) -> None:
    assert normalise(value) == expected


def test_r51_same_forgives_width_spaces_and_case_only() -> None:
    assert same("ＹＡＭＡＤＡ", "yamada")
    assert same("東京都千代田区神田神保町１－１０５", "東京都千代田区 神田神保町1-105")
    assert not same("髙田", "高田")  # a different kanji is a different name
    assert not same("東京都千代田区神田神保町1-105", "東京都千代田区神田神保町1丁目105番地")
    assert not same("山田太郎", "太郎山田")  # order matters (seed 001 FAQ)
    assert not same("神保町1-105", "神保町1‐105")  # U+2010 HYPHEN is not NFKC-equal to '-'


@pytest.mark.parametrize(("digits", "valid"), [
    ("123456789018", True),  # 11 - (212 mod 11 = 3) = 8
    ("123456789012", False),
    ("000000000060", True),  # remainder 1 → check digit 0
    ("000000000000", True),  # remainder 0 → check digit 0
    ("000000000051", True),  # 5 x 2 = 10 → 11 - 10 = 1
    ("12345678901", False),  # 11 digits
    ("1234567890180", False),  # 13 digits
    ("１２３４５６７８９０１８", False),  # full-width digits are not the raw number (NFKC first)
])
def test_r51_individual_number_check_digit(digits: str, valid: bool) -> None:
    assert is_individual_number(digits) is valid


def test_r51_individual_number_found_in_text() -> None:
    assert shows_individual_number("東京都千代田区 123456789018")
    assert shows_individual_number("１２３４ ５６７８ ９０１８")  # full-width, grouped
    assert shows_individual_number("1234-5678-9018")
    assert not shows_individual_number("1234-5678-9012")  # wrong check digit
    assert not shows_individual_number("神保町1-105")
    assert not shows_individual_number("01234567890180")  # a longer run is not a 12-digit number
