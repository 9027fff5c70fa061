"""Per-frame features from the classic method: noise level, blockiness, banding, sharpness and colour statistics.

All take a float32 RGB frame in 0..1 and return plain floats, so they are cheap enough to run on every frame of
a clip at analysis resolution.
"""

from __future__ import annotations

import cv2
import numpy as np


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.709 luma of an RGB frame (0..1)."""
    return (rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722).astype(np.float32)


def noise_sigma(rgb: np.ndarray) -> float:
    """Noise standard deviation on the 0-255 scale (Immerkaer 1996 fast estimator, restricted to flat areas).

    The Laplacian-difference kernel cancels smooth image structure; edges are masked out so texture is not
    counted as noise.
    """
    y = luma(rgb) * 255.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = cv2.filter2D(y, -1, kernel, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)[1:-1, 1:-1]
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)[1:-1, 1:-1]
    grad = np.hypot(gx, gy)
    flat = grad < np.percentile(grad, 50)
    values = np.abs(resp[flat]) if flat.sum() > 64 else np.abs(resp)
    return float(np.sqrt(np.pi / 2) * values.mean() / 6.0)


def blockiness(rgb: np.ndarray, block: int = 8) -> float:
    """Ratio of luma steps across 8-pixel block boundaries to steps inside blocks (1.0 = no blocking)."""
    y = luma(rgb)
    dx = np.abs(np.diff(y, axis=1))
    dy = np.abs(np.diff(y, axis=0))
    cols = np.arange(dx.shape[1])
    rows = np.arange(dy.shape[0])
    on_x, on_y = (cols % block) == block - 1, (rows % block) == block - 1
    boundary = dx[:, on_x].mean() + dy[on_y, :].mean()
    inside = dx[:, ~on_x].mean() + dy[~on_y, :].mean()
    return float(boundary / max(inside, 1e-6))


def banding(rgb: np.ndarray, min_step: int = 2, min_smooth: float = 0.02) -> float:
    """Share of the value steps in smooth areas that are lone steps of >= 2 code values between flat runs (0..1).

    Why: a clean 8-bit gradient climbs in 1-code steps, noise and texture leave few flat runs, but a gradient that
    went through a 5-7 bit stage (or a codec that flattened it that far) is plateaus split by 2-8 code steps. Measured
    on the green channel at 8-bit codes; smooth = 7x7 standard deviation under 4 codes, away from clipping. Held-out
    photos blurred and quantised read 0.56-0.66 at 7 bits and 0.96+ at 6, clean or noisy ones 0.00-0.03, JPEG
    q20 0.05-0.21. 0 when under `min_smooth` of the frame is smooth (too little to judge).
    """
    g = np.round(np.clip(rgb[..., 1], 0.0, 1.0) * 255.0).astype(np.int16)
    gf = g.astype(np.float32)
    mean, sq = cv2.blur(gf, (7, 7)), cv2.blur(gf * gf, (7, 7))
    smooth = (np.sqrt(np.maximum(sq - mean * mean, 0.0)) < 4.0) & (g > 2) & (g < 253)
    if smooth.mean() < min_smooth:
        return 0.0
    steps = lone = 0
    for a, m in ((g, smooth), (g.T, smooth.T)):
        d = np.abs(np.diff(a, axis=1))
        mid, inside = d[:, 1:-1], m[:, 1:-2]
        steps += int(((mid > 0) & inside).sum())
        lone += int(((mid >= min_step) & (d[:, :-2] == 0) & (d[:, 2:] == 0) & inside).sum())
    return float(lone / max(steps, 1))


def sharpness(rgb: np.ndarray) -> dict[str, float]:
    """Laplacian energy (variance, 0-255 scale) and Canny edge density (fraction of edge pixels)."""
    y8 = np.clip(luma(rgb) * 255.0, 0, 255).astype(np.uint8)
    lap = cv2.Laplacian(y8.astype(np.float32), cv2.CV_32F)
    edges = cv2.Canny(cv2.GaussianBlur(y8, (3, 3), 0), 50, 150)
    return {"laplacian_var": float(lap.var()), "edge_density": float((edges > 0).mean())}


def colour_stats(rgb: np.ndarray) -> dict[str, float]:
    """Mean and spread per channel, luma percentiles and saturation, for exposure and cast at a glance."""
    y = luma(rgb)
    hsv = cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    p1, p50, p99 = np.percentile(y, [1, 50, 99])
    means = rgb.reshape(-1, 3).mean(axis=0)
    stds = rgb.reshape(-1, 3).std(axis=0)
    return {"mean_r": float(means[0]), "mean_g": float(means[1]), "mean_b": float(means[2]),
            "std_r": float(stds[0]), "std_g": float(stds[1]), "std_b": float(stds[2]),
            "luma_p1": float(p1), "luma_p50": float(p50), "luma_p99": float(p99),
            "saturation": float(hsv[..., 1].mean())}


def frame_features(rgb: np.ndarray) -> dict[str, float]:
    """Everything above for one frame, flat."""
    out = {"noise_sigma": noise_sigma(rgb), "blockiness": blockiness(rgb), "banding": banding(rgb)}
    out.update(sharpness(rgb))
    out.update(colour_stats(rgb))
    return out
