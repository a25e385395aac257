"""R-51 "uploads are JPEG only": the check reads the bytes' structure, never a name or a declared type."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotad.identity.jpeg import JpegInfo, NotJpeg, check_jpeg

DATA = Path(__file__).resolve().parent.parent / "data"
BASELINE = (DATA / "baseline.jpg").read_bytes()
PROGRESSIVE = (DATA / "progressive.jpg").read_bytes()
PNG = (DATA / "python.png").read_bytes()


def test_r51_baseline_jpeg_accepted_with_its_frame() -> None:
    assert check_jpeg(BASELINE) == JpegInfo(width=16, height=16, components=3, progressive=False)


def test_r51_progressive_jpeg_accepted_with_its_frame() -> None:
    assert check_jpeg(PROGRESSIVE) == JpegInfo(width=493, height=58, components=3, progressive=True)


def _refused(data: bytes) -> str:
    with pytest.raises(NotJpeg) as info:
        check_jpeg(data)
    return str(info.value)


def test_r51_png_refused_by_content() -> None:
    assert _refused(PNG) == "no SOI marker (FF D8) at the start"


def test_r51_png_behind_a_jpeg_soi_refused() -> None:
    # A JPEG's first two bytes in front of something else: SOI alone does not make a JPEG.
    assert _refused(b"\xff\xd8" + PNG + b"\xff\xd9") == "expected a marker at byte 2"


def test_r51_truncated_jpeg_refused_for_missing_eoi() -> None:
    assert _refused(BASELINE[:-2]) == "no EOI marker (FF D9) at the end"
    assert _refused(BASELINE[:300]) == "no EOI marker (FF D9) at the end"


def test_r51_soi_and_eoi_alone_are_not_a_jpeg() -> None:
    assert _refused(b"\xff\xd8\xff\xd9") == "no frame header (SOF) or no scan (SOS)"
    assert _refused(b"") == "no SOI marker (FF D8) at the start"
    assert _refused(b"\xff\xd8\xd9") == "no SOI marker (FF D8) at the start"  # too short to be anything


def test_r51_cut_in_the_middle_but_ending_ff_d9_refused() -> None:
    # The first 200 bytes stop inside a DHT segment: its length runs past the file.
    assert _refused(BASELINE[:200] + b"\xff\xd9") == "segment FF C4 length 22 does not fit the file"


def test_r51_scan_before_frame_refused() -> None:
    sos = BASELINE.index(b"\xff\xda")
    sof = BASELINE.index(b"\xff\xc0")
    without_frame = BASELINE[:sof] + BASELINE[sof + 2 + int.from_bytes(BASELINE[sof + 2:sof + 4], "big"):]
    assert sos > sof
    assert _refused(without_frame) == "scan (SOS) before the frame header (SOF)"


def test_r51_impossible_frame_refused() -> None:
    sof = BASELINE.index(b"\xff\xc0")
    zero_width = BASELINE[:sof + 7] + b"\x00\x00" + BASELINE[sof + 9:]
    assert _refused(zero_width) == "frame header has an impossible precision, size or component count"


def test_r51_trailing_data_after_eoi_refused() -> None:
    # Ends with FF D9, but the real EOI comes earlier and something else follows it.
    assert _refused(BASELINE + b"\x00\xff\xd9") == "data after the EOI marker"


def test_r51_scan_data_must_reach_a_marker() -> None:
    sos = BASELINE.index(b"\xff\xda")
    header_end = sos + 2 + int.from_bytes(BASELINE[sos + 2:sos + 4], "big")
    # The scan's data runs straight into EOI: structurally complete, so accepted (pixels are not decoded).
    assert check_jpeg(BASELINE[:header_end] + b"\x12\x34\xff\xd9").width == 16
    assert _refused(BASELINE[:header_end] + b"\x12\xff") == "no EOI marker (FF D9) at the end"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_r72_any_bytes_give_a_verdict_never_a_crash(data: bytes) -> None:
    with contextlib.suppress(NotJpeg):
        check_jpeg(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(BASELINE) - 1), st.integers(0, 255), st.integers(0, len(BASELINE)))
def test_r72_mutated_jpegs_give_a_verdict_never_a_crash(at: int, value: int, cut: int) -> None:
    mutated = BASELINE[:at] + bytes([value]) + BASELINE[at + 1:]
    for data in (mutated, mutated[:cut] + b"\xff\xd9", b"\xff\xd8" + mutated[cut:]):
        try:
            info = check_jpeg(data)
        except NotJpeg:
            continue
        assert info.width > 0 and info.height > 0 and 1 <= info.components <= 4
