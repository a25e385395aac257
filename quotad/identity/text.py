"""Comparing what a document shows with what the contract holds (R-51).

Both sides are normalised the same way before they are compared: Unicode NFKC (full-width
letters, digits and symbols become their half-width forms, half-width katakana become
full-width), every space removed (half-width U+0020 and full-width U+3000 alike, and any other
white space), and case folded. Nothing else is forgiven: a missing, repeated or extra character
is a mismatch, as the seed's FAQ says, and so is a different kanji or a different order.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
# 12 digits, each pair at most one space or hyphen apart, with no digit just before or after.
_TWELVE = re.compile(r"(?<!\d)(?=((?:\d[\s\-]?){11}\d)(?!\d))")
_SEPARATOR = re.compile(r"[\s\-]")
# The individual number's check digit weights, for the 11 digits from the right (Q1 … Q11).
_WEIGHTS = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6)


def normalise(value: str) -> str:
    """NFKC, no spaces of either width, case folded."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", value)).casefold()


def same(a: str, b: str) -> bool:
    """True if a and b are the same text after normalise()."""
    return normalise(a) == normalise(b)


def is_individual_number(digits: str) -> bool:
    """True if digits is a 12-digit individual number (My Number) whose check digit is right.

    Check digit: 11 - (sum of P(n) x Q(n) for n = 1..11, counted from the right) mod 11, or 0
    when that remainder is 0 or 1; Q(n) = n + 1 for n <= 6, n - 5 for n >= 7.
    """
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    body = digits[:11][::-1]
    remainder = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11
    check = 0 if remainder <= 1 else 11 - remainder
    return int(digits[11]) == check


def shows_individual_number(value: str) -> bool:
    """True if the text (after NFKC) holds 12 digits, grouped or not (1234 5678 9018), that make
    a valid individual number: such text must not be kept (R-51)."""
    text = unicodedata.normalize("NFKC", value)
    return any(is_individual_number(_SEPARATOR.sub("", m.group(1))) for m in _TWELVE.finditer(text))
