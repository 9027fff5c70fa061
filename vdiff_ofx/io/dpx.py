"""The frame rate and timecode a DPX file's film and TV headers state (SMPTE 268M).

Why: scanners and conform tools write both, Resolve places a DPX sequence by its timecode, and FFmpeg's decoder
hands over neither, so a sequence would play at a guessed 24 fps from 00:00:00:00 and its enhanced movie would not
line up with the original. Only these few fields are read; a field left undefined (all ones) or out of range counts
as absent.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

from .sequence import parse_rate

_FILM_RATE = 1724   # film header: frame rate of the original (R32)
_TV_TIMECODE = 1920  # TV header: SMPTE timecode, BCD hh mm ss ff (U32)
_TV_RATE = 1940      # TV header: temporal sampling rate (R32)
_UNDEFINED = 0xFFFFFFFF


@dataclass(frozen=True)
class DpxTimes:
    rate: Fraction | None
    timecode: str | None


def _rate(raw: int) -> Fraction | None:
    if raw == _UNDEFINED:
        return None
    value = struct.unpack("<f", struct.pack("<I", raw))[0]
    if not math.isfinite(value) or not 1 <= value <= 1000:
        return None
    return parse_rate(f"{value:.3f}")  # (snaps 23.976 to 24000/1001)


def _timecode(raw: int) -> str | None:
    if raw in (_UNDEFINED, 0):
        return None
    digits = [(raw >> shift) & 0xF for shift in range(28, -4, -4)]
    if any(d > 9 for d in digits):
        return None
    hh, mm, ss, ff = (digits[i] * 10 + digits[i + 1] for i in range(0, 8, 2))
    if hh > 23 or mm > 59 or ss > 59:
        return None
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def read_times(path: str) -> DpxTimes:
    """The file's stated frame rate (TV header, else film header) and start timecode; None where not stated."""
    try:
        with open(path, "rb") as f:
            head = f.read(2048)
    except OSError:
        return DpxTimes(None, None)
    if len(head) < 8 or head[:4] not in (b"SDPX", b"XPDS"):
        return DpxTimes(None, None)
    order = ">" if head[:4] == b"SDPX" else "<"
    image_offset = struct.unpack(order + "I", head[4:8])[0]

    def u32(at: int) -> int:
        if at + 4 > min(len(head), image_offset):  # the headers end where the picture starts
            return _UNDEFINED
        return struct.unpack(order + "I", head[at:at + 4])[0]

    rate = _rate(u32(_TV_RATE)) or _rate(u32(_FILM_RATE))
    return DpxTimes(rate, _timecode(u32(_TV_TIMECODE)))


_GENERIC_END = 1664  # file + image + orientation headers: what FFmpeg's encoder writes before the picture
_INDUSTRY = 384      # film (256) + TV (128) headers
_ELEMENT0_OFFSET = 808  # image information header: element 0's data offset


def _bcd(timecode: str) -> int:
    digits = [int(c) for c in timecode.replace(";", ":").replace(":", "")]
    value = 0
    for d in digits:
        value = value << 4 | d
    return value


def stamp_times(path: str, rate: Fraction, timecode: str | None) -> None:
    """Write ``rate`` and ``timecode`` into the film and TV headers of a DPX file FFmpeg wrote (it writes neither
    header), moving the picture behind them; a file that has them already is patched in place.

    Why: Resolve places a DPX sequence by its timecode and plays it at the header's rate; without them an enhanced
    scan comes back at 00:00:00:00 and a guessed rate.
    """
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if data[:4] not in (b"SDPX", b"XPDS"):
        raise ValueError(f"{path} is not a DPX file")
    order = ">" if data[:4] == b"SDPX" else "<"
    offset = struct.unpack_from(order + "I", data, 4)[0]
    if offset < _GENERIC_END + _INDUSTRY:  # no film/TV headers: make room for them
        data[_GENERIC_END:offset] = b"\xff" * _INDUSTRY
        offset = _GENERIC_END + _INDUSTRY
        struct.pack_into(order + "I", data, 4, offset)
        struct.pack_into(order + "I", data, 16, len(data))
        struct.pack_into(order + "I", data, 28, _INDUSTRY)
        struct.pack_into(order + "I", data, _ELEMENT0_OFFSET, offset)
    struct.pack_into(order + "f", data, _FILM_RATE, float(rate))
    struct.pack_into(order + "f", data, _TV_RATE, float(rate))
    struct.pack_into(order + "I", data, _TV_TIMECODE, _bcd(timecode) if timecode else _UNDEFINED)
    with open(path, "wb") as f:
        f.write(data)
