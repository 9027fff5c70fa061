"""Shot-cut detection from colour-histogram and edge changes between consecutive frames.

A cut is where the HSV histogram distance jumps well above its running level and the edge maps stop
overlapping; requiring both keeps fast pans from being taken as cuts, unless the colour jump alone is overwhelming
(noisy footage makes edge maps unreliable). A flash (a camera flash, a strobe, a one- or two-frame white-out) jumps
as far as a cut does, so a candidate waits ``lookahead`` frames and is dropped when the picture comes back to what
it was before the jump.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class CutSignal:
    hist: np.ndarray
    edges: np.ndarray


def signal(rgb: np.ndarray, size: int = 160) -> CutSignal:
    """Small-resolution histogram and edge map of a frame: what the detector compares."""
    step = max(1, max(rgb.shape[:2]) // (2 * size))  # every step-th pixel first: 1 ms a 1080p frame, not 15
    rgb = rgb[::step, ::step]
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(np.clip(rgb[..., :3], 0, 1).astype(np.float32), (max(8, int(w * scale)), max(8, int(h * scale))),
                       interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 360, 0, 1, 0, 1]).ravel()
    hist /= max(hist.sum(), 1e-6)
    y8 = (cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 1.2) * 255).astype(np.uint8)
    edges = cv2.dilate(cv2.Canny(y8, 60, 160), np.ones((3, 3), np.uint8)) > 0
    return CutSignal(hist, edges)


def is_cut(hist: float, edge: float, level: float = 0.0, hist_threshold: float = 0.35,
           edge_threshold: float = 0.6) -> bool:
    """Whether a change (``change``'s pair) is a cut: the histogram jumps well above its running ``level`` and the
    edges stop overlapping, or it jumps far enough on its own."""
    jump = hist > max(hist_threshold, 3 * level)
    strong = hist > max(2 * hist_threshold, 5 * level)
    return jump and (edge > edge_threshold or strong)


def shot_positions(size: int, cut_before: Callable[[int], bool]) -> list[int]:
    """For a window of ``size`` frames around its middle one, the position whose frame each position uses: itself,
    or the middle frame's shot's first / last frame where ``cut_before(i)`` (a cut between positions i - 1 and i)
    lies in between, as vdiff enhance's windows repeat edge frames at a cut."""
    half = size // 2
    lo = next((i for i in range(half, 0, -1) if cut_before(i)), 0)
    hi = next((i for i in range(half, size - 1) if cut_before(i + 1)), size - 1)
    return [min(max(i, lo), hi) for i in range(size)]


def change(a: CutSignal, b: CutSignal) -> tuple[float, float]:
    """(histogram distance 0..1, edge change ratio 0..1) between two frames."""
    hist = 0.5 * float(np.abs(a.hist - b.hist).sum())
    inter = np.logical_and(a.edges, b.edges).sum()
    union = max(np.logical_or(a.edges, b.edges).sum(), 1)
    return hist, 1.0 - inter / union


@dataclass
class _Candidate:
    index: int
    before: CutSignal  # the frame before the jump
    jump: float  # its histogram distance


class CutDetector:
    """Feed frames in order; ``push`` returns the frame numbers confirmed as starting a new shot (``lookahead``
    frames late), ``flush`` those still waiting at the end of the clip."""

    def __init__(self, hist_threshold: float = 0.35, edge_threshold: float = 0.6, min_shot: int = 4,
                 lookahead: int = 2) -> None:
        self.hist_threshold = hist_threshold
        self.edge_threshold = edge_threshold
        self.min_shot = min_shot
        self.lookahead = lookahead
        self._prev: CutSignal | None = None
        self._since = 0
        self._level = 0.0
        self._count = 0
        self._pending: list[_Candidate] = []

    def push(self, rgb: np.ndarray) -> list[int]:
        cur = signal(rgb)
        index, self._count = self._count, self._count + 1
        confirmed = []
        for c in list(self._pending):
            back = 0.5 * float(np.abs(c.before.hist - cur.hist).sum())
            if back < self.hist_threshold and back < 0.5 * c.jump:  # the picture came back: a flash
                self._pending.remove(c)
            elif index - c.index >= self.lookahead:
                self._pending.remove(c)
                confirmed.append(c.index)
        cut = False
        if self._prev is not None:
            hist, edge = change(self._prev, cur)
            cut = is_cut(hist, edge, self._level, self.hist_threshold, self.edge_threshold)
            cut = cut and self._since >= self.min_shot
            self._level = 0.8 * self._level + 0.2 * hist if not cut else 0.0
            if cut:
                self._pending.append(_Candidate(index, self._prev, hist))
        self._since = 0 if cut else self._since + 1
        self._prev = cur
        return confirmed

    def flush(self) -> list[int]:
        """Candidates the clip ended before confirming: cuts (nothing came back)."""
        done, self._pending = [c.index for c in self._pending], []
        return done


def within_shot(window: list[np.ndarray], hist_threshold: float = 0.35, edge_threshold: float = 0.6) -> list[int]:
    """For a temporal window handed over without the clip around it (the OFX frame bridge), the position whose frame
    each position should use: itself, or the middle frame's shot's edge frame where a hard cut lies between. Without
    a running level, only jumps a detector would call cuts outright count (histogram beyond ``hist_threshold`` with
    the edges gone, or beyond twice it)."""
    signals = [signal(f) for f in window]
    return shot_positions(len(window), lambda i: is_cut(*change(signals[i - 1], signals[i]), 0.0, hist_threshold,
                                                        edge_threshold))
