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


def probe_sequence(pattern: str, first: int, last: int, fps: Fraction) -> MediaInfo:
    """An image sequence as Resolve imports it (README: ImportMedia with FilePath file_%03d.dpx, StartIndex 1 and
    EndIndex 100 gives the clip "file_[001-100].dpx"), at the project's frame rate (the files carry none)."""
    digits = int(pattern.split("%")[1].split("d")[0] or 0)
    label = pattern.replace(pattern[pattern.index("%"):pattern.index("d", pattern.index("%")) + 1],
                            f"[{first:0{digits}d}-{last:0{digits}d}]", 1)
    with av.open(pattern % first) as c:
        v = c.streams.video[0]
        return MediaInfo(label, fps, last - first + 1, v.codec_context.width, v.codec_context.height, "00:00:00:00",
                         False, v.codec_context.name)


def _open(path: str):
    """A clip file, or an image sequence by its Resolve name (shot_[1001-1100].dpx)."""
    name = Path(path).name
    if "[" in name and "-" in name and name.endswith("]" + Path(path).suffix):
        first = name[name.index("[") + 1:name.index("-", name.index("["))]
        pattern = str(Path(path).with_name(name[:name.index("[")] + f"%0{len(first)}d" + Path(path).suffix))
        return av.open(pattern, format="image2", options={"start_number": str(int(first))})
    return av.open(path)


@functools.lru_cache(maxsize=32)
def _frames(path: str, mtime: float) -> tuple[np.ndarray, ...]:
    with _open(path) as c:
        return tuple(f.to_ndarray(format="rgb24") for f in c.decode(video=0))


def frame(path: str, index: int) -> np.ndarray | None:
    """RGB frame ``index`` of the clip (None past its end)."""
    frames = _frames(path, Path(path).stat().st_mtime if Path(path).exists() else 0.0)
    return frames[index] if 0 <= index < len(frames) else None
