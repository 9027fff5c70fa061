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

Coarse grain (correlated over a pixel or more: film scans, upscaled footage) has almost no Laplacian energy, so its
per-block ratios scatter even when aligned (ratios of 20-120). Over 32-px blocks its variance still agrees from block
to block where texture does not (_pooled_ratio), and for such grain the analysis takes the noise's std over time as
the shot's sigma (clip.analyse), since a factor of 3-10 on the fine-scale estimate would lift texture as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .features import luma

BLOCK = 16
CROP = 640  # the measure runs on the frame's central CROP x CROP (noise is a property of the whole frame)
SPREAD = 1.45  # noise alone: quartile ratio 1.2-1.4 on the held-out pictures; unaligned texture 1.5-7
MAX_RATIO = 100.0  # raise the fine-scale estimate by 10x at most (coarse grain reads 5-10x low at fine scale)
POOLED = 32  # block size of the coarse-grain check (_pooled_ratio)
POOLED_SPREAD = 1.6  # its limit on the cross terms' quartile ratio
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


@dataclass(frozen=True)
class Grain:
    """What three frames tell of the middle one's noise: ``ratio`` (its variance over its Laplacian estimate) and
    ``sigma`` (its luma std, 0-255, straight from the cross term of the same blocks)."""

    ratio: float
    sigma: float


def grain_ratio(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray) -> float | None:
    """measure_grain's ratio (None where it gives no figure)."""
    found = measure_grain(prev, cur, nxt)
    return None if found is None else found.ratio


def measure_grain(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray) -> Grain | None:
    """The middle frame's noise (three consecutive central_luma crops): the median over its flat blocks of their
    noise variance over their Laplacian estimate, and the noise's std; None where the blocks disagree or too few
    are usable.

    The neighbours are aligned by their global shift first; where that leaves the blocks disagreeing (zoom,
    rotation, a subject moving over its background), along dense optical flow. The flow, fitted to the noisy frames,
    follows a little of the noise too: it reads ~10 % low (correlated noise 4.4-4.8 against 4.7-5.4 by the shift on
    the held-out pictures), the safe side. Where neither gives agreeing 16-px blocks, coarse grain is looked for
    (_pooled_ratio)."""
    if not prev.shape == cur.shape == nxt.shape or min(cur.shape) < 4 * BLOCK:
        return None
    h, w = cur.shape
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    alignments = []
    try:
        (before, m0), (after, m1) = _aligned(cur, prev, window), _aligned(cur, nxt, window)
        alignments.append((before, after, max(m0, m1)))
        found = _block_ratio(cur, *alignments[-1])
    except ValueError:
        found = _DISAGREE
    if found == _DISAGREE:  # (not where too few blocks hold noise at all: clean footage costs no flow)
        (before, m0), (after, m1) = _flow_aligned(cur, prev), _flow_aligned(cur, nxt)
        alignments.append((before, after, max(m0, m1)))
        found = _block_ratio(cur, *alignments[-1])
    for aligned in alignments if not isinstance(found, Grain) else ():
        found = _pooled_ratio(cur, *aligned)
        if found is not None:
            break
    return found if isinstance(found, Grain) else None


def _pooled_ratio(cur: np.ndarray, before: np.ndarray, after: np.ndarray, m: int) -> Grain | None:
    """Coarse grain (noise correlated over a pixel or more: film grain, upscaled footage) leaves so little Laplacian
    energy that per-block ratios scatter (or too few blocks hold any) although the frames are aligned. Over POOLED-px blocks the noise variance
    itself (the cross term) still agrees from block to block, where unaligned texture does not (quartiles within
    1.1-1.4 for noise, 2.2-10 for clean texture on the held-out pictures); then the ratio is pooled over the flat
    blocks: all their cross terms over all their energy. None where they disagree."""
    cross, energy, usable, found = _blocks(cur, before, after, m, POOLED, min_energy=0.0)
    if found < 8:
        return None
    q25, q75 = np.percentile(cross[usable], [25, 75])
    if q25 <= 0 or q75 / q25 > POOLED_SPREAD:
        return None
    ratio = float(cross[usable].sum() / max(float(energy[usable].sum()), 1e-6))
    return Grain(ratio, float(np.sqrt(cross[usable].mean())))


_DISAGREE = -1.0  # _block_ratio: the blocks' ratios spread (the frames are not aligned)


def _block_ratio(cur: np.ndarray, before: np.ndarray, after: np.ndarray, m: int) -> Grain | float | None:
    """The ratio over the flatter blocks of ``cur`` with its neighbours aligned (``m``: their spoilt border);
    None where too few blocks are usable, _DISAGREE where their ratios spread."""
    cross, energy, usable, found = _blocks(cur, before, after, m, BLOCK)
    if found < 24:
        return None
    ratios = cross[usable] / energy[usable]
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    if q25 <= 0 or q75 / q25 > SPREAD:
        return _DISAGREE
    return Grain(float(q50), float(np.sqrt(max(np.median(cross[usable]), 0.0))))


def _blocks(cur: np.ndarray, before: np.ndarray, after: np.ndarray, m: int, size: int, min_energy: float = 0.25
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per ``size``-px block of ``cur``: the noise variance the two frame differences share (the cross term), the
    Laplacian energy, which blocks to use (the flattest 30 % of those unclipped and with some energy), and how many
    had the energy."""
    h, w = cur.shape
    inner = (slice(m, h - m), slice(m, w - m))
    lap = cv2.filter2D(cur, -1, _LAPLACE, borderType=cv2.BORDER_REFLECT)[inner]
    grad = np.hypot(cv2.Sobel(cur, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(cur, cv2.CV_32F, 0, 1, ksize=3))[inner]
    mid = cur[inner]
    d1, d2 = mid - before[inner], after[inner] - mid
    bh, bw = mid.shape[0] // size, mid.shape[1] // size
    if bh * bw == 0:  # a frame smaller than one block
        empty = np.zeros(0, np.float32)
        return empty, empty, np.zeros(0, bool), 0

    def blocks(z: np.ndarray) -> np.ndarray:
        return z[:bh * size, :bw * size].reshape(bh, size, bw, size).transpose(0, 2, 1, 3).reshape(bh * bw, -1)

    b1, b2, values = blocks(d1), blocks(d2), blocks(mid)
    b1 = b1 - b1.mean(1, keepdims=True)  # a fade or flicker moves whole blocks: not noise
    b2 = b2 - b2.mean(1, keepdims=True)
    cross = -(b1 * b2).mean(1)
    energy = (blocks(lap) ** 2).mean(1)
    flatness = blocks(grad).mean(1)
    usable = (values.min(1) > 4) & (values.max(1) < 251) & (energy > min_energy)  # clipping hides noise
    found = int(usable.sum())
    if found:
        usable &= flatness <= np.percentile(flatness[usable], 30)  # unaligned texture shows least where it is flat
    return cross, energy, usable, found


def grain_factor(ratio: float | None) -> float:
    """What the fine-scale noise estimate is multiplied by: sqrt(ratio), 1 to 10 (1 with no figure)."""
    return 1.0 if ratio is None else float(np.sqrt(np.clip(ratio, 1.0, MAX_RATIO)))
