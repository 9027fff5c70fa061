"""Preprocessing from the classic method: crop, rotate/flip and resize, applied to float frames before the model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from ..errors import VdiffError

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4, "area": cv2.INTER_AREA,
}


@dataclass(frozen=True)
class Crop:
    """Keep a ``width`` x ``height`` window whose top-left corner is (x, y); written W:H:X:Y as in ffmpeg."""

    width: int
    height: int
    x: int = 0
    y: int = 0

    def size(self, w: int, h: int) -> tuple[int, int]:
        if self.x < 0 or self.y < 0 or self.width <= 0 or self.height <= 0 or \
                self.x + self.width > w or self.y + self.height > h:
            raise VdiffError(f"crop {self.width}:{self.height}:{self.x}:{self.y} does not fit a {w}x{h} frame")
        return self.width, self.height

    def aspect(self, w: int, h: int, sar: Fraction) -> Fraction:
        return sar

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y:self.y + self.height, self.x:self.x + self.width]


@dataclass(frozen=True)
class Rotate:
    """Rotate clockwise by a multiple of 90 degrees (lossless, no resampling)."""

    degrees: int

    def size(self, w: int, h: int) -> tuple[int, int]:
        return (h, w) if self.degrees % 180 else (w, h)

    def aspect(self, w: int, h: int, sar: Fraction) -> Fraction:
        return 1 / sar if self.degrees % 180 else sar

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        k = (self.degrees // 90) % 4
        return np.ascontiguousarray(np.rot90(frame, k=-k, axes=(0, 1))) if k else frame


@dataclass(frozen=True)
class Flip:
    """Mirror horizontally ('h') or vertically ('v')."""

    axis: str

    def size(self, w: int, h: int) -> tuple[int, int]:
        return w, h

    def aspect(self, w: int, h: int, sar: Fraction) -> Fraction:
        return sar

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frame[:, ::-1] if self.axis == "h" else frame[::-1])


@dataclass(frozen=True)
class Resize:
    """Resample to width x height with a named interpolation (lanczos, bicubic, bilinear, area, nearest)."""

    width: int
    height: int
    interpolation: str = "lanczos"

    def size(self, w: int, h: int) -> tuple[int, int]:
        return self.width, self.height

    def aspect(self, w: int, h: int, sar: Fraction) -> Fraction:
        """The picture keeps its display shape: pixels stretch by what the resize did to each side."""
        return sar * Fraction(w * self.height, h * self.width)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[1] == self.width and frame.shape[0] == self.height:
            return frame
        out = cv2.resize(frame, (self.width, self.height), interpolation=INTERPOLATIONS[self.interpolation])
        return out if out.ndim == 3 else out[..., None]


Op = Crop | Rotate | Flip | Resize


def parse_crop(text: str) -> Crop:
    m = re.fullmatch(r"(\d+):(\d+)(?::(\d+):(\d+))?", text.strip())
    if not m:
        raise VdiffError(f"--crop '{text}': expected W:H[:X:Y] in pixels, e.g. 1920:800:0:140")
    w, h, x, y = (int(v) if v else 0 for v in m.groups())
    return Crop(w, h, x, y)


def parse_resize(text: str, interpolation: str, width: int, height: int, sar: Fraction | None = None) -> Resize:
    """'1280x720', '1280x-1' (keep the display aspect, even height) or '50%'.

    A -1 side keeps the picture's shape as it is seen: an anamorphic source (``sar``, e.g. HDV's 1440x1080 at 4:3)
    resized to 1920x-1 comes out 1920x1080 with square pixels, as an editor conforming it expects.
    """
    if interpolation not in INTERPOLATIONS:
        raise VdiffError(f"--interp '{interpolation}': choose from {', '.join(INTERPOLATIONS)}")
    text = text.strip().lower()
    if text.endswith("%"):
        try:
            f = float(text[:-1]) / 100
        except ValueError:
            raise VdiffError(f"--resize '{text}': expected a percentage like 50%") from None
        return Resize(max(2, round(width * f / 2) * 2), max(2, round(height * f / 2) * 2), interpolation)
    m = re.fullmatch(r"(-?\d+)x(-?\d+)", text)
    if not m:
        raise VdiffError(f"--resize '{text}': expected WxH (e.g. 1280x720, 1280x-1) or a percentage")
    w, h = int(m.group(1)), int(m.group(2))
    shown = width * float(sar or 1)  # the display width in square pixels
    if w == -1 and h > 0:
        w = max(2, round(shown * h / height / 2) * 2)
    if h == -1 and w > 0:
        h = max(2, round(height * w / shown / 2) * 2)
    if w <= 0 or h <= 0:
        raise VdiffError(f"--resize '{text}': width and height must be positive")
    return Resize(w, h, interpolation)


def output_size(ops: list[Op], width: int, height: int) -> tuple[int, int]:
    """Frame size after ``ops``; validates each op against the size it will see."""
    for op in ops:
        width, height = op.size(width, height)
    return width, height


def output_aspect(ops: list[Op], width: int, height: int, sar: Fraction | None) -> Fraction | None:
    """The sample (pixel) aspect ratio after ``ops`` for a source of ``sar`` (None: square pixels).

    Why: an anamorphic clip (HDV 1440x1080 at 4:3, DV, DVCPRO HD) written back with square pixels shows squeezed on
    the timeline. Within half a percent of square (what rounding a -1 side to even pixels leaves) is square.
    """
    if sar is None:
        return None
    for op in ops:
        sar = op.aspect(width, height, sar)
        width, height = op.size(width, height)
    return None if abs(sar - 1) < Fraction(1, 200) else sar


def apply(ops: list[Op], frame: np.ndarray) -> np.ndarray:
    for op in ops:
        frame = op(frame)
    return frame
