"""Split a frame into equal overlapping tiles and blend them back so the seams are invisible.

Every tile has the same size, so tiles batch together. Adjacent tiles overlap by at least ``overlap`` pixels;
each tile's weight is zero over a ``guard`` band at its inner edges (where zero padding contaminates a CNN's
output, up to its receptive field) and ramps up linearly across the rest of the overlap. With guard >= the
receptive field the tiled result equals the untiled one up to float rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Tile:
    y0: int
    x0: int
    h: int
    w: int


def _starts(length: int, tile: int, overlap: int, align: int) -> list[int]:
    if tile >= length:
        return [0]
    step = tile - overlap
    n = math.ceil((length - overlap) / step)
    if n <= 1:
        return [0]
    starts = [round(i * (length - tile) / (n - 1)) // align * align for i in range(n)]
    starts[-1] = length - tile
    return starts


def plan(height: int, width: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """Equal-size tiles covering the frame, starting on multiples of ``align`` (height and width must be
    multiples of it too, so a model's internal down-sampling grid is the same in every tile)."""
    if overlap * 2 >= tile and tile < max(height, width):
        raise ValueError(f"tile size {tile} must exceed twice the overlap {overlap}")
    tile = max(tile // align * align, align)
    th, tw = min(tile, height), min(tile, width)
    return [Tile(y, x, th, tw) for y in _starts(height, th, overlap, align)
            for x in _starts(width, tw, overlap, align)]


def _ramp(n: int, lo_edge: bool, hi_edge: bool, guard: int, ramp: int) -> np.ndarray:
    """1-D weights: zero over ``guard`` then a linear rise over ``ramp`` on each side that has a neighbour."""
    idx = np.arange(n, dtype=np.float32)
    w = np.ones(n, np.float32)
    if lo_edge:
        w = np.minimum(w, np.clip((idx - guard + 1) / (ramp + 1), 0, 1))
    if hi_edge:
        w = np.minimum(w, np.clip((n - idx - guard) / (ramp + 1), 0, 1))
    return w


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad an NCHW batch on the bottom/right to a size multiple; returns the padding added."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
    return x, ph, pw


def run_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: int,
    overlap: int,
    scale: int = 1,
    multiple: int = 1,
    batch: int = 4,
    guard: int | None = None,
) -> np.ndarray:
    """Apply ``fn`` (NCHW batch -> NCHW batch, spatially scaled by ``scale``) to a CHW image through tiles."""
    _, h0, w0 = image.shape
    padded, _, _ = pad_to_multiple(image[None], multiple)
    image = padded[0]
    c, height, width = image.shape
    tiles = plan(height, width, tile, overlap, multiple)
    guard = overlap // 3 if guard is None else guard
    ramp = max(overlap - 2 * guard, 1)
    out: np.ndarray | None = None
    weight = np.zeros((height * scale, width * scale), np.float32)
    for i in range(0, len(tiles), batch):
        group = tiles[i:i + batch]
        x = np.stack([image[:, t.y0:t.y0 + t.h, t.x0:t.x0 + t.w] for t in group])
        y = fn(x)
        if out is None:
            out = np.zeros((y.shape[1], height * scale, width * scale), np.float32)
        for t, yt in zip(group, y):
            wy = _ramp(t.h * scale, t.y0 > 0, t.y0 + t.h < height, guard * scale, ramp * scale)
            wx = _ramp(t.w * scale, t.x0 > 0, t.x0 + t.w < width, guard * scale, ramp * scale)
            w2 = wy[:, None] * wx[None, :]
            ys, xs = slice(t.y0 * scale, (t.y0 + t.h) * scale), slice(t.x0 * scale, (t.x0 + t.w) * scale)
            out[:, ys, xs] += yt * w2
            weight[ys, xs] += w2
    assert out is not None
    out /= np.maximum(weight, 1e-8)
    return out[:, : h0 * scale, : w0 * scale]
