"""Real clip files behind media pool items: probed and decoded with PyAV."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class MediaInfo:
    path: str
    fps: Fraction
    frames: int
    width: int
    height: int
    timecode: str
    has_audio: bool
    codec: str


def tc_to_frames(tc: str, fps: float) -> int:
    h, m, s, f = (int(x) for x in tc.replace(";", ":").split(":"))
    base = round(fps)
    return ((h * 60 + m) * 60 + s) * base + f


def frames_to_tc(n: int, fps: float) -> str:
    base = round(fps)
    f = n % base
    s = n // base
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def probe(path: str) -> MediaInfo:
    with av.open(path) as c:
        v = c.streams.video[0]
        fps = Fraction(v.average_rate or v.guessed_rate or 25)
        frames = v.frames or sum(1 for _ in c.decode(v))
        tc = v.metadata.get("timecode") or c.metadata.get("timecode") or "00:00:00:00"
        has_audio = bool(c.streams.audio)
        return MediaInfo(path, fps, frames, v.codec_context.width, v.codec_context.height, tc, has_audio,
                         v.codec_context.name)


@functools.lru_cache(maxsize=32)
def _frames(path: str, mtime: float) -> tuple[np.ndarray, ...]:
    with av.open(path) as c:
        return tuple(f.to_ndarray(format="rgb24") for f in c.decode(video=0))


def frame(path: str, index: int) -> np.ndarray | None:
    """RGB frame ``index`` of the clip (None past its end)."""
    frames = _frames(path, Path(path).stat().st_mtime)
    return frames[index] if 0 <= index < len(frames) else None
