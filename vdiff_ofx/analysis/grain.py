"""How much more noise a frame holds than its fine-scale (Laplacian) estimate shows, measured over time.

Why: features.noise_sigma (Immerkaer's estimator) reads white noise right but sees only the top of the spectrum, so
spatially correlated noise (camera noise after demosaicing and in-camera processing, film grain, noise in upscaled
footage) reads 2-2.5x low, and `--strength auto` under-denoises it by 2-7 dB (benchmarks/bench_auto_strength.py). In a
single frame such noise looks like fine texture. Over time it does not: the middle frame of three carries its noise
with opposite signs into its two frame differences, so -E[d1 d2] is that frame's noise variance, whatever its
spatial correlation, while static texture cancels. The neighbours are warped onto the middle frame by their global
(subpixel) shift first; interpolation filters their noise, which leaves the cross term alone.

Per 16x16 block of the flatter part of the frame, that variance over the block's Laplacian energy (which equals the
variance for white noise) is the block's ratio: ~1 for white noise, ~5 for noise blurred by a Gaussian of sigma 0.6.
Texture that the global shift does not align (parallax, zoom, a subject moving over its background) gives ratios
that vary from block to block; such frames are aligned again along dense optical flow. A frame whose ratios still
spread (quartiles more than SPREAD apart) gives no figure, and the analysis keeps the fine-scale estimate: the
measure can only raise a clip's strength where the frames agree.
"""

from __future__ import annotations

import cv2
import numpy as np

from .features import luma

BLOCK = 16
CROP = 640  # the measure runs on the frame's central CROP x CROP (noise is a property of the whole frame)
SPREAD = 1.45  # noise alone: quartile ratio 1.2-1.4 on the held-out pictures; unaligned texture 1.5-7
MAX_RATIO = 6.25  # raise the fine-scale estimate by 2.5x at most
FLOW_BLUR = 1.5  # Gaussian sigma (px) on the frames the flow is fitted to
_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32) / 6.0  # unit gain on white noise


def central_luma(rgb: np.ndarray) -> np.ndarray:
    """The frame's central CROP x CROP luma, 0-255 float32: what grain_ratio compares."""
    h, w = rgb.shape[:2]
    top, left = max((h - CROP) // 2, 0), max((w - CROP) // 2, 0)
    return np.ascontiguousarray(luma(rgb[top:top + CROP, left:left + CROP]) * 255.0, dtype=np.float32)


def _aligned(ref: np.ndarray, y: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, int]:
    """``y`` warped onto ``ref`` by the global shift phase correlation finds (subpixel, or rounded where that fits
    better), and the border that shift spoils."""
    h, w = ref.shape
    (dx, dy), _ = cv2.phaseCorrelate(ref, y, window)
    best: tuple[float, np.ndarray, int] | None = None
    for sx, sy in {(dx, dy), (float(round(dx)), float(round(dy)))}:
        warp = np.float32([[1, 0, -sx], [0, 1, -sy]])
        out = cv2.warpAffine(y, warp, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
        margin = int(np.ceil(max(abs(sx), abs(sy)))) + 3
        if 2 * margin >= min(h, w) - BLOCK:
            continue
        err = float(np.abs(out - ref)[margin:h - margin, margin:w - margin].mean())
        if best is None or err < best[0]:
            best = (err, out, margin)
    if best is None:
        raise ValueError("shift larger than the frame")
    return best[1], best[2]


def _flow_aligned(ref: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """``y`` warped onto ``ref`` along dense optical flow (DIS on the slightly blurred frames, so the flow follows
    the picture rather than its noise), and the border it spoils."""
    h, w = ref.shape
    grey = [np.clip(cv2.GaussianBlur(z, (0, 0), FLOW_BLUR) + 0.5, 0, 255).astype(np.uint8) for z in (ref, y)]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey[0], grey[1], None)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(y, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return out, min(int(np.ceil(np.abs(flow).max())) + 3, (min(h, w) - BLOCK) // 2 - 1)


def grain_ratio(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray) -> float | None:
    """Median over blocks of the middle frame's noise variance over its Laplacian estimate (three consecutive
    central_luma crops), or None where the blocks disagree or too few are usable.

    The neighbours are aligned by their global shift first; where that leaves the blocks disagreeing (zoom,
    rotation, a subject moving over its background), along dense optical flow. The flow, fitted to the noisy frames,
    follows a little of the noise too: it reads ~10 % low (correlated noise 4.4-4.8 against 4.7-5.4 by the shift on
    the held-out pictures), the safe side."""
    if not prev.shape == cur.shape == nxt.shape or min(cur.shape) < 4 * BLOCK:
        return None
    h, w = cur.shape
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    try:
        (before, m0), (after, m1) = _aligned(cur, prev, window), _aligned(cur, nxt, window)
        ratio = _block_ratio(cur, before, after, max(m0, m1))
    except ValueError:
        ratio = _DISAGREE
    if ratio == _DISAGREE:  # (not where too few blocks hold noise at all: clean footage costs no flow)
        (before, m0), (after, m1) = _flow_aligned(cur, prev), _flow_aligned(cur, nxt)
        ratio = _block_ratio(cur, before, after, max(m0, m1))
    return None if ratio == _DISAGREE else ratio


_DISAGREE = -1.0  # _block_ratio: the blocks' ratios spread (the frames are not aligned)


def _block_ratio(cur: np.ndarray, before: np.ndarray, after: np.ndarray, m: int) -> float | None:
    """The ratio over the flatter blocks of ``cur`` with its neighbours aligned (``m``: their spoilt border);
    None where too few blocks are usable, _DISAGREE where their ratios spread."""
    h, w = cur.shape
    inner = (slice(m, h - m), slice(m, w - m))
    lap = cv2.filter2D(cur, -1, _LAPLACE, borderType=cv2.BORDER_REFLECT)[inner]
    grad = np.hypot(cv2.Sobel(cur, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(cur, cv2.CV_32F, 0, 1, ksize=3))[inner]
    mid = cur[inner]
    d1, d2 = mid - before[inner], after[inner] - mid
    bh, bw = mid.shape[0] // BLOCK, mid.shape[1] // BLOCK

    def blocks(z: np.ndarray) -> np.ndarray:
        return z[:bh * BLOCK, :bw * BLOCK].reshape(bh, BLOCK, bw, BLOCK).transpose(0, 2, 1, 3).reshape(bh * bw, -1)

    b1, b2, values = blocks(d1), blocks(d2), blocks(mid)
    b1 = b1 - b1.mean(1, keepdims=True)  # a fade or flicker moves whole blocks: not noise
    b2 = b2 - b2.mean(1, keepdims=True)
    cross = -(b1 * b2).mean(1)
    energy = (blocks(lap) ** 2).mean(1)
    flatness = blocks(grad).mean(1)
    usable = (values.min(1) > 4) & (values.max(1) < 251) & (energy > 0.25)  # clipping hides noise
    if usable.sum() < 24:
        return None
    usable &= flatness <= np.percentile(flatness[usable], 30)  # unaligned texture shows least where it is flat
    ratios = cross[usable] / energy[usable]
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    if q25 <= 0 or q75 / q25 > SPREAD:
        return _DISAGREE
    return float(q50)


def grain_factor(ratio: float | None) -> float:
    """What the fine-scale noise estimate is multiplied by: sqrt(ratio), 1 to 2.5 (1 with no figure)."""
    return 1.0 if ratio is None else float(np.sqrt(np.clip(ratio, 1.0, MAX_RATIO)))
