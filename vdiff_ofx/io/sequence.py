"""Numbered image sequences (DPX scans, TIFF / PNG / EXR plates) as one clip, named as editors and tools write them:
Resolve's ``shot_[1001-1100].dpx``, printf ``shot.%04d.dpx`` or hashes ``shot.####.dpx``.

Why here: a sequence is opened through FFmpeg's image2 demuxer with its first number and a frame rate (files carry
none FFmpeg reads), and counted from the file names rather than by reading every frame (a 4K DPX is 50 MB). Frame
``n`` of the clip is the file numbered ``first + n``; outputs keep those numbers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import InputError, OutputError

IMAGE_CODECS = {".dpx": "dpx", ".tif": "tiff", ".tiff": "tiff", ".png": "png", ".exr": "exr"}
DEFAULT_RATE = Fraction(24)  # what a sequence plays at when nobody says (film scans, VFX plates)
_RANGE = re.compile(r"\[(\d+)-(\d+)\]")   # Resolve: shot_[1001-1100].dpx (padding = the digits written)
_PRINTF = re.compile(r"%(0?)(\d*)d")       # shot.%04d.dpx
_HASHES = re.compile(r"#+")                # shot.####.dpx


@dataclass(frozen=True)
class ImageSequence:
    pattern: str   # printf form of the full path, as FFmpeg's image2 takes it
    first: int
    last: int      # inclusive
    digits: int    # zero padding (0: none)

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def path_of(self, number: int) -> str:
        return self.pattern % number

    def name(self) -> str:
        """The name without its number: 'shot' for shot.%04d.dpx."""
        return os.path.basename(self.pattern).split("%")[0].rstrip("._- ") or "sequence"

    def label(self) -> str:
        """Resolve's name for it: shot_[1001-1100].dpx."""
        width = self.digits or 1
        return _PRINTF.sub(f"[{self.first:0{width}d}-{self.last:0{width}d}]", self.pattern.replace("%%", "%"), 1)


def _printf_of(path: str) -> tuple[str, int | None, int | None, int] | None:
    """(printf pattern, first, last, digits) for a sequence name, first/last None when the name gives no range."""
    name = os.path.basename(path)
    folder = os.path.dirname(path)
    spots = [(m, kind) for kind, rx in (("range", _RANGE), ("printf", _PRINTF), ("hash", _HASHES))
             for m in rx.finditer(name)]
    if len(spots) != 1:
        return None
    m, kind = spots[0]
    if kind == "range":
        digits = len(m.group(1)) if m.group(1).startswith("0") or len(m.group(1)) == len(m.group(2)) else 0
        first, last = int(m.group(1)), int(m.group(2))
    elif kind == "printf":
        digits, first, last = int(m.group(2) or 0) if m.group(1) or m.group(2) else 0, None, None
    else:
        digits, first, last = len(m.group(0)), None, None
    stem = name[:m.start()].replace("%", "%%") + (f"%0{digits}d" if digits else "%d") + \
        name[m.end():].replace("%", "%%")
    return os.path.join(folder, stem), first, last, digits


def is_sequence_name(path: str) -> bool:
    """Whether ``path`` names a numbered image sequence rather than one file (a file by that exact name wins)."""
    return os.path.splitext(path)[1].lower() in IMAGE_CODECS and not os.path.exists(path) and \
        _printf_of(path) is not None


def find_sequence(path: str) -> ImageSequence | None:
    """The sequence ``path`` names, its range from the name or else from the files there; None when ``path`` is no
    sequence name. InputError when its folder holds none of it or frames are missing inside the range."""
    if not is_sequence_name(path):
        return None
    pattern, first, last, digits = _printf_of(path)  # type: ignore[misc]
    if first is None:
        try:
            numbers = sorted(_numbered(pattern, digits))
        except OSError as exc:
            raise InputError(f"cannot read the folder of {path}: {exc.strerror}") from None
        if not numbers:
            raise InputError(f"no files of the sequence {path} in {os.path.dirname(pattern) or '.'}")
        first, last = numbers[0], numbers[-1]
    if last < first:
        raise InputError(f"sequence {path}: the range ends before it starts")
    seq = ImageSequence(pattern, first, last, digits)
    missing = [n for n in range(first, last + 1) if not os.path.isfile(seq.path_of(n))]
    if missing:
        shown = ", ".join(str(n) for n in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"sequence {seq.label()} is missing frame(s) {shown}: a gap would shift every later frame")
    return seq


def open_sequence(seq: ImageSequence, rate: Fraction | None = None, first: int = 0):
    """FFmpeg's image2 demuxer on ``seq`` from its ``first``-th frame: frame n at pts n in 1/rate."""
    import av  # (here: the CLI imports this module for its --fps type, and starts without PyAV)

    return av.open(seq.pattern, format="image2",
                   options={"start_number": str(seq.first + first), "framerate": str(rate or DEFAULT_RATE)})


def output_sequence(path: str) -> str | None:
    """The printf pattern of an output sequence name (``out.%04d.dpx``, ``out.####.dpx``), None for a movie name."""
    if os.path.splitext(path)[1].lower() not in IMAGE_CODECS:
        return None
    found = _printf_of(path)
    if found is None or found[1] is not None:
        raise OutputError(f"output {path}: name the frames' number with %04d or #### (e.g. out.%04d.dpx)")
    return found[0]


def output_label(path: str, first: int, count: int) -> str:
    """How an output names itself when done: a movie by its path, a sequence by its files (out.[1003-1007].dpx)."""
    found = _printf_of(path) if output_sequence(path) else None
    if found is None or count <= 0:
        return path
    return ImageSequence(found[0], first, first + count - 1, found[3]).label()


def parse_rate(text: str | float | int) -> Fraction:
    """'24', '25', '24000/1001' or the decimals editors type for NTSC rates ('23.976', '29.97', '59.94')."""
    try:
        value = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise InputError(f"frame rate '{text}': expected a number such as 24, 25, 23.976 or 24000/1001") from None
    if not 1 <= value <= 1000:
        raise InputError(f"frame rate {text} is outside 1-1000")
    ntsc = round(value * Fraction(1001, 1000))
    if value.denominator != 1 and abs(value - Fraction(ntsc * 1000, 1001)) < Fraction(1, 200):
        return Fraction(ntsc * 1000, 1001)
    return value.limit_denominator(1001)


def first_number(source_sequence: ImageSequence | None, start: int) -> int:
    """The file number an output sequence starts at: the source's own frame number (a sequence's file number, a
    movie's frame index), so frames keep their numbers through vdiff."""
    return (source_sequence.first if source_sequence else 0) + start


def _numbered(pattern: str, digits: int = 0) -> dict[int, str]:
    """The files in ``pattern``'s folder that its number spot matches (at least ``digits`` digits): number -> path.
    OSError where the folder cannot be read."""
    folder = os.path.dirname(pattern) or "."
    head, _, tail = os.path.basename(pattern).replace("%%", "\0").partition("%")
    tail = tail[tail.index("d") + 1:]
    rx = re.compile(re.escape(head.replace("\0", "%")) + r"(\d{%d,})" % max(digits, 1)
                    + re.escape(tail.replace("\0", "%")) + "$")
    return {int(m.group(1)): os.path.join(folder, n) for n in os.listdir(folder) if (m := rx.match(n))}


def sequence_pattern(path: str) -> str | None:
    """The printf pattern ``path`` names as a sequence (any of the three namings), without looking at the files;
    None when it names one file."""
    return _printf_of(path)[0] if is_sequence_name(path) else None  # type: ignore[index]


def existing_outputs(pattern: str) -> list[str]:
    """Files already in the folder that an output sequence of ``pattern`` would write over (any number)."""
    try:
        return sorted(_numbered(pattern).values())
    except OSError:
        return []


def publish(temp: Path, output: Path, first: int, count: int) -> None:
    """Move a finished output into place: one rename for a movie, one per file for a sequence (numbered alike)."""
    pattern = output_sequence(str(output))
    if pattern is None:
        os.replace(temp, output)
        return
    for n in range(first, first + count):
        os.replace(str(temp) % n, pattern % n)


def discard(temp: Path, first: int, count: int) -> None:
    """Delete a partial output: the movie's temporary file, or every temporary file of a sequence."""
    names = [str(temp) % n for n in range(first, first + count)] if output_sequence(str(temp)) else [str(temp)]
    for name in names:
        try:
            os.remove(name)
        except FileNotFoundError:
            pass


def rate_arg(text: str) -> Fraction:
    """parse_rate for argparse (``--fps``): a bad value is a usage error, not a traceback."""
    import argparse

    try:
        return parse_rate(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
