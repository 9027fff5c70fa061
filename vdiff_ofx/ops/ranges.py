"""Frame ranges by frame number or timecode, so an editor can give --start/--end the way the timeline shows them."""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import VdiffError

_TC = re.compile(r"(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})")


def timecode_to_frames(tc: str, rate: Fraction) -> int:
    """Absolute frame count of an SMPTE timecode 'HH:MM:SS:FF' (';' before FF marks drop-frame)."""
    m = _TC.fullmatch(tc.strip())
    if not m:
        raise VdiffError(f"'{tc}' is not a timecode (HH:MM:SS:FF)")
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    nominal = round(rate)
    if ff >= nominal:
        raise VdiffError(f"timecode '{tc}': frame {ff} >= {nominal} frames per second")
    total = ((hh * 60 + mm) * 60 + ss) * nominal + ff
    if sep == ";":  # drop-frame: skip 2 (or 4 at 59.94) frame numbers each minute except every tenth
        drop = 2 * nominal // 30
        minutes = hh * 60 + mm
        total -= drop * (minutes - minutes // 10)
    return total


def frames_to_timecode(frames: int, rate: Fraction, drop: bool = False) -> str:
    nominal = round(rate)
    if drop:
        d = 2 * nominal // 30
        per10 = nominal * 600 - d * 9
        tens, rem = divmod(frames, per10)
        frames += d * 9 * tens + (d * ((rem - d) // (nominal * 60 - d)) if rem > d else 0)
    ff = frames % nominal
    ss = frames // nominal % 60
    mm = frames // (nominal * 60) % 60
    hh = frames // (nominal * 3600) % 24
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


def parse_position(text: str | int | None, rate: Fraction, start_timecode: str | None) -> int | None:
    """A frame number ('120') or a source timecode ('01:00:05:00', relative to the clip's start timecode)."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    if _TC.fullmatch(text):
        absolute = timecode_to_frames(text, rate)
        origin = timecode_to_frames(start_timecode, rate) if start_timecode else 0
        if absolute < origin:
            raise VdiffError(f"timecode {text} is before the clip's start timecode {start_timecode}")
        return absolute - origin
    raise VdiffError(f"'{text}' is neither a frame number nor a timecode HH:MM:SS:FF")


def resolve_range(start: str | int | None, end: str | int | None, frame_count: int, rate: Fraction,
                  start_timecode: str | None) -> tuple[int, int]:
    """[start, end) clamped to the clip; end is exclusive, like Python slices."""
    s = parse_position(start, rate, start_timecode) or 0
    e = parse_position(end, rate, start_timecode)
    e = frame_count if e is None else e
    if s >= frame_count:
        raise VdiffError(f"--start {start} is past the clip's last frame ({frame_count - 1})")
    e = min(e, frame_count)
    if e <= s:
        raise VdiffError(f"empty frame range: start {s} >= end {e}")
    return s, e
