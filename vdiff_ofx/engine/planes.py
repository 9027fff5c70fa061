"""Layout changes between the pipeline's H x W x C frames and the models' N x C x H x W planes, through OpenCV.

Why: on a GPU a 1080p frame runs through `denoise` in ~20 ms, and numpy's strided transposes cost as much again (a
temporal window stacks 5 frames, `--tta 8` flips and transposes 8 views there and back). OpenCV's split, merge,
flip and transpose give the same bits 3-7x faster. Each function falls back to numpy where OpenCV cannot write
into the array it is handed (another dtype, a non-contiguous plane).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _cv_into(op, src: np.ndarray, dst: np.ndarray) -> bool:
    """Run ``op(src, dst)`` and report whether OpenCV really wrote into ``dst`` (it silently allocates otherwise)."""
    if src.dtype != np.float32 or dst.dtype != np.float32 or not dst.flags.c_contiguous:
        return False
    got = op(src, dst)
    return got is dst or (isinstance(got, np.ndarray) and np.shares_memory(got, dst))


def to_planes(frames: Sequence[np.ndarray], channels: int = 3) -> np.ndarray:
    """The first ``channels`` channels of each H x W x C frame, stacked oldest first into one (n*channels) x H x W
    float32 array (a temporal window becomes the model's input without a second copy)."""
    h, w = frames[0].shape[:2]
    out = np.empty((channels * len(frames), h, w), np.float32)
    for k, f in enumerate(frames):
        dst = out[k * channels:(k + 1) * channels]
        if f.ndim == 3 and f.shape[-1] == channels and f.dtype == np.float32 and f.flags.c_contiguous:
            views = list(dst)
            got = cv2.split(f, views)
            if all(np.shares_memory(g, v) for g, v in zip(got, views)):
                continue
        dst[...] = np.moveaxis(f[..., :channels], -1, 0)
    return out


def to_pixels(planes: np.ndarray) -> np.ndarray:
    """C x H x W planes (C <= 4; row-strided crops are fine) as one contiguous H x W x C float32 frame."""
    if planes.dtype == np.float32 and 1 < planes.shape[0] <= 4:
        return cv2.merge(list(planes))
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1), dtype=np.float32)


def _per_plane(x: np.ndarray, shape: tuple[int, ...], op) -> np.ndarray:
    out = np.empty(x.shape[:-2] + shape, np.float32)
    src, dst = x.reshape((-1,) + x.shape[-2:]), out.reshape((-1,) + shape)
    for s, d in zip(src, dst):
        if not _cv_into(op, s, d):
            return np.empty(0)  # the caller takes the numpy path
    return out


def flip(x: np.ndarray, t: int) -> np.ndarray:
    """View ``t`` (0..7) of an N x C x H x W batch as a new contiguous array: bit 0 flips W, bit 1 flips H, bit 2
    swaps H and W (applied last)."""
    code = {1: 1, 2: 0, 3: -1}.get(t & 3)
    y = x
    if code is not None:
        y = _per_plane(x, x.shape[-2:], lambda s, d: cv2.flip(s, code, d))
        if y.size == 0:
            y = np.ascontiguousarray(x[..., ::-1, :] if code == 0 else x[..., ::-1] if code == 1 else x[..., ::-1, ::-1])
    if t & 4:
        z = _per_plane(y, y.shape[-2:][::-1], lambda s, d: cv2.transpose(s, d))
        y = z if z.size else np.ascontiguousarray(np.swapaxes(y, -1, -2))
    return np.ascontiguousarray(y)


def unflip(y: np.ndarray, t: int) -> np.ndarray:
    """Inverse of ``flip`` (the output may be larger than the input, e.g. 2x: the view is geometric only)."""
    if t & 4:
        y = flip(y, 4)
    return flip(y, t & 3) if t & 3 else y
