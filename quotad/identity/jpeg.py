"""R-51 "uploads are JPEG only", checked on the bytes (never the file name or a declared type).

A file is a JPEG when it starts with SOI (FF D8), ends with EOI (FF D9) and everything between
parses as JPEG segments: every marker segment's length fits the file, a frame header (SOF) with
a sane size and 1-4 components comes before the first scan (SOS), and every scan's entropy-coded
data runs to a marker. The pixels are not decoded: this is a structure check, not a viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_SOS = 0xDA
_EOI = 0xD9
_TEM = 0x01
_RST = range(0xD0, 0xD8)
# Start-of-frame markers: baseline, extended, progressive, lossless (Huffman and arithmetic).
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


class NotJpeg(ValueError):
    """The bytes are not a well-formed JPEG; the message says where it fails."""


@dataclass(slots=True, frozen=True)
class JpegInfo:
    """What the structure check learnt: the frame's size and number of colour components."""

    width: int
    height: int
    components: int
    progressive: bool


def check_jpeg(data: bytes) -> JpegInfo:
    """The JPEG's frame facts, or NotJpeg saying which structural rule the bytes break."""
    if len(data) < 4 or not data.startswith(SOI):
        raise NotJpeg("no SOI marker (FF D8) at the start")
    if not data.endswith(EOI):
        raise NotJpeg("no EOI marker (FF D9) at the end")
    frame: JpegInfo | None = None
    scans = 0
    pos = 2
    while True:
        marker, pos = _next_marker(data, pos)
        if marker == _EOI:
            break
        if marker in _RST or marker == _TEM or marker == 0xD8:
            raise NotJpeg(f"marker FF {marker:02X} out of place at byte {pos - 2}")
        segment, pos = _segment(data, pos, marker)
        if marker in _SOF:
            if frame is not None:
                raise NotJpeg("more than one frame header (SOF)")
            frame = _frame(segment, marker)
        elif marker == _SOS:
            if frame is None:
                raise NotJpeg("scan (SOS) before the frame header (SOF)")
            _scan_header(segment, frame.components)
            pos = _skip_entropy(data, pos)
            scans += 1
    if pos != len(data):
        raise NotJpeg("data after the EOI marker")
    if frame is None or scans == 0:
        raise NotJpeg("no frame header (SOF) or no scan (SOS)")
    return frame


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    """The marker at pos (fill bytes FF skipped) and the position after it."""
    if pos >= len(data) or data[pos] != 0xFF:
        raise NotJpeg(f"expected a marker at byte {pos}")
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data) or data[pos] == 0x00:
        raise NotJpeg(f"truncated or empty marker at byte {pos}")
    return data[pos], pos + 1


def _segment(data: bytes, pos: int, marker: int) -> tuple[bytes, int]:
    """A marker segment's payload (after its 2-byte length) and the position after it."""
    if pos + 2 > len(data):
        raise NotJpeg(f"segment FF {marker:02X} truncated at byte {pos}")
    length = int.from_bytes(data[pos:pos + 2], "big")
    end = pos + length
    if length < 2 or end > len(data) - 2:  # the EOI must still follow
        raise NotJpeg(f"segment FF {marker:02X} length {length} does not fit the file")
    return data[pos + 2:end], end


def _frame(segment: bytes, marker: int) -> JpegInfo:
    if len(segment) < 6:
        raise NotJpeg("frame header too short")
    precision = segment[0]
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    components = segment[5]
    if precision not in (8, 12, 16) or width == 0 or height == 0 or not 1 <= components <= 4:
        raise NotJpeg("frame header has an impossible precision, size or component count")
    if len(segment) != 6 + 3 * components:
        raise NotJpeg("frame header length does not match its component count")
    return JpegInfo(width, height, components, progressive=marker in (0xC2, 0xC6, 0xCA, 0xCE))


def _scan_header(segment: bytes, frame_components: int) -> None:
    if not segment or not 1 <= segment[0] <= frame_components or len(segment) != 4 + 2 * segment[0]:
        raise NotJpeg("scan header does not match the frame")


def _skip_entropy(data: bytes, pos: int) -> int:
    """Past a scan's entropy-coded data: to the first marker that is not a stuffed 00 or a RST."""
    end = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= end:
            raise NotJpeg("scan data runs past the end of the file")
        following = data[pos + 1]
        if following == 0x00 or following in _RST or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos
