"""YUV4MPEG2 streams as ffmpeg writes them (``-f yuv4mpegpipe``): header parsing, frame reading and writing.

Only the container lives here (planes as numpy arrays); colour conversion is the caller's business. Reads are
exact-size so memory stays bounded at one frame, and every malformed or truncated input is one clear
InputError line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

import numpy as np

from .errors import InputError

SIGNATURE = b"YUV4MPEG2"
MAX_LINE = 4096

# y4m colourspace tag -> (ffmpeg pix_fmt, bits, chroma subsampling (x, y) shifts, planes)
_CHROMA = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "411": (2, 0)}


def _layout(tag: str) -> tuple[str, int, tuple[int, int] | None, bool]:
    """(pix_fmt, bits, chroma shifts or None for mono, alpha) for a C tag; InputError for unknown ones."""
    if tag in ("420jpeg", "420mpeg2", "420paldv", "420"):
        return "yuv420p", 8, (1, 1), False
    if tag in ("422", "444", "411"):
        return f"yuv{tag}p", 8, _CHROMA[tag], False
    if tag == "444alpha":
        return "yuva444p", 8, (0, 0), True
    m = re.fullmatch(r"mono(\d*)", tag)
    if m:
        bits = int(m.group(1) or 8)
        if bits in (8, 9, 10, 12, 14, 16):
            return ("gray" if bits == 8 else f"gray{bits}le"), bits, None, False
    m = re.fullmatch(r"(420|422|444)p(9|10|12|14|16)", tag)
    if m:
        return f"yuv{m.group(1)}p{m.group(2)}le", int(m.group(2)), _CHROMA[m.group(1)], False
    raise InputError(f"y4m colourspace C{tag} is not supported (420jpeg/420mpeg2/420paldv/422/444/411/mono, "
                     "and 420p10/422p10/444p10/...p16)")


@dataclass(frozen=True)
class Y4MHeader:
    """The stream header; ``params`` keeps every field in order (raw text) so output can echo it."""

    width: int
    height: int
    colourspace: str = "420jpeg"
    params: tuple[str, ...] = ()

    @property
    def pix_fmt(self) -> str:
        return _layout(self.colourspace)[0]

    @property
    def bits(self) -> int:
        return _layout(self.colourspace)[1]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.bits <= 8 else np.dtype("<u2")

    def plane_shapes(self) -> list[tuple[int, int]]:
        """(height, width) of each plane in stream order: Y, Cb, Cr (, A)."""
        _, _, sub, alpha = _layout(self.colourspace)
        shapes = [(self.height, self.width)]
        if sub is not None:
            sx, sy = sub
            c = (-(-self.height // (1 << sy)), -(-self.width // (1 << sx)))
            shapes += [c, c]
        if alpha:
            shapes.append((self.height, self.width))
        return shapes

    @property
    def frame_bytes(self) -> int:
        return sum(h * w for h, w in self.plane_shapes()) * self.dtype.itemsize

    def tag(self, key: str) -> str | None:
        """Value of a field by its letter (``F``, ``A``) or of an ``X`` extension (``XCOLORRANGE``)."""
        for p in self.params:
            if key.startswith("X") and p.startswith(key + "="):
                return p[len(key) + 1:]
            if not key.startswith("X") and p[:1] == key:
                return p[1:]
        return None

    def resized(self, width: int, height: int) -> Y4MHeader:
        params = tuple(f"W{width}" if p[:1] == "W" else f"H{height}" if p[:1] == "H" else p for p in self.params)
        return replace(self, width=width, height=height, params=params)

    def encode(self) -> bytes:
        return b" ".join([SIGNATURE] + [p.encode("ascii") for p in self.params]) + b"\n"


def _line(stream: BinaryIO, what: str) -> bytes | None:
    """One '\\n'-terminated line (without it); None at a clean EOF; InputError on an overlong or cut line."""
    line = stream.readline(MAX_LINE)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise InputError(f"y4m {what} is cut short or longer than {MAX_LINE} bytes")
    return line[:-1]


def read_header(stream: BinaryIO) -> Y4MHeader:
    raw = stream.readline(MAX_LINE)
    if not raw:
        raise InputError("no input on stdin (expected a YUV4MPEG2 stream, e.g. ffmpeg -f yuv4mpegpipe -)")
    if not raw.startswith(SIGNATURE + b" "):
        raise InputError("input is not YUV4MPEG2 (use ffmpeg ... -f yuv4mpegpipe -)")
    if not raw.endswith(b"\n"):
        raise InputError(f"y4m header is cut short or longer than {MAX_LINE} bytes")
    fields = raw[:-1].split(b" ")
    try:
        params = tuple(f.decode("ascii") for f in fields[1:] if f)
    except UnicodeDecodeError:
        raise InputError("y4m header has non-ASCII bytes") from None
    values = {p[0]: p[1:] for p in params if p[0] != "X"}
    try:
        width, height = int(values["W"]), int(values["H"])
    except (KeyError, ValueError):
        raise InputError("y4m header lacks a valid W (width) or H (height)") from None
    if not (0 < width <= 65536 and 0 < height <= 65536):
        raise InputError(f"y4m frame size {width}x{height} is not plausible")
    if "F" in values and not re.fullmatch(r"\d+:\d+", values["F"]):
        raise InputError(f"y4m frame rate F{values['F']} is malformed")
    if "C" not in values:
        params = params + ("C420jpeg",)
    header = Y4MHeader(width, height, values.get("C", "420jpeg"), params)
    _layout(header.colourspace)  # fail now, not at the first frame
    return header


def read_frames(stream: BinaryIO, header: Y4MHeader) -> Iterator[list[np.ndarray]]:
    """Yield each frame's planes (Y, Cb, Cr[, A]) as 2-D arrays; InputError on a malformed or truncated frame."""
    shapes = header.plane_shapes()
    size = header.frame_bytes
    index = 0
    while True:
        line = _line(stream, f"frame {index} header")
        if line is None:
            return
        if not (line == b"FRAME" or line.startswith(b"FRAME ")):
            raise InputError(f"y4m frame {index}: expected a FRAME marker, got {line[:20]!r}")
        data = stream.read(size)
        if len(data) < size:
            raise InputError(f"y4m input is truncated: frame {index} has {len(data)} of {size} bytes")
        buf = np.frombuffer(data, dtype=header.dtype)
        planes, pos = [], 0
        for h, w in shapes:
            planes.append(buf[pos:pos + h * w].reshape(h, w))
            pos += h * w
        yield planes
        index += 1


def write_frame(stream: BinaryIO, planes: list[np.ndarray], header: Y4MHeader) -> None:
    """Write one frame of ``header``'s layout (planes are cast to its sample type, little-endian)."""
    stream.write(b"FRAME\n")
    for plane, shape in zip(planes, header.plane_shapes()):
        if plane.shape != shape:
            raise ValueError(f"plane of shape {plane.shape}, header says {shape}")
        stream.write(np.ascontiguousarray(plane, dtype=header.dtype).tobytes())
