"""Real little clips written with PyAV for the pipeline and CLI tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def moving_frames(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """n uint8 RGB frames: gradients and a moving square, with mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        img = np.stack([(xx / width) * 200 + 20, (yy / height) * 200 + 20, 128 + 60 * np.sin((xx + 3 * i) / 9)], -1)
        s = max(4, width // 6)
        x0 = (4 * i) % max(1, width - s)
        img[height // 3: height // 3 + s, x0:x0 + s] = (240, 60, 30)
        img += rng.normal(0, 6, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def make_clip(path: Path, n: int = 12, width: int = 96, height: int = 64, codec: str = "libx264",
              pix_fmt: str = "yuv420p", rate: Fraction = Fraction(25), audio: bool = False,
              timecode: str | None = None, sar: Fraction | None = None) -> Path:
    """Encode ``n`` frames to ``path``; optional AAC audio, a start timecode tag and a pixel aspect ratio."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            vs.options = {"crf": "10", "preset": "ultrafast"}
        if timecode:
            vs.metadata["timecode"] = timecode
        if sar:
            vs.codec_context.sample_aspect_ratio = sar
        a = None
        if audio:
            a = out.add_stream("aac", rate=48000)
            a.layout = "stereo"
        for i, rgb in enumerate(moving_frames(n, width, height)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            frame.time_base = 1 / Fraction(rate)
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if a is not None:
            samples = int(48000 * n / float(rate))
            t = np.arange(samples) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, samples, 1024):
                chunk = np.stack([tone[k:k + 1024]] * 2)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                af.sample_rate = 48000
                af.pts = k
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path
