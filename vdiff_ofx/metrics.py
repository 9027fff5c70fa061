"""Full-reference quality figures used by the demo, benchmarks and tests (PSNR, SSIM, flicker, warping error)."""

from __future__ import annotations

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), averaged over channels."""
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    vals = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(m[5:-5, 5:-5].mean())
    return float(np.mean(vals))


def flicker(frames: list[np.ndarray], static_mask: np.ndarray | None = None) -> float:
    """Mean absolute frame-to-frame change (x255) on static regions: lower is steadier."""
    diffs = []
    for prev, cur in zip(frames, frames[1:]):
        d = np.abs(cur.astype(np.float32) - prev.astype(np.float32)).mean(axis=-1)
        diffs.append(float(d[static_mask].mean() if static_mask is not None else d.mean()) * 255)
    return float(np.mean(diffs)) if diffs else 0.0


# ------------------------------------------------------------------------------------------ temporal consistency


def _gray_u8(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((np.clip(rgb[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense Farneback flow from gray u8 frame a to b: a(x) ~ b(x + flow(x))."""
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 21, 5, 7, 1.5, 0)


def _remap(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FlowReference:
    """Motion of a CLEAN reference sequence, computed once and reused to score any restoration of it.

    For each t >= 1: the backward flow t -> t-1 (to warp frame t-1 onto t) and a validity mask that drops
    occlusions (forward-backward consistency, Sundaram et al. 2010: |f_b + f_f(x + f_b)|^2 <= 0.01 (|f_b|^2 +
    |f_f(x + f_b)|^2) + 0.5) and pixels whose match falls outside the frame.
    """

    def __init__(self, clean: list[np.ndarray] | np.ndarray) -> None:
        grays = [_gray_u8(f) for f in clean]
        self.flows: list[np.ndarray] = []
        self.valid: list[np.ndarray] = []
        for prev, cur in zip(grays, grays[1:]):
            back = _flow(cur, prev)
            fwd = _flow(prev, cur)
            fwd_at = _remap(fwd, back)
            err = ((back + fwd_at) ** 2).sum(-1)
            ok = err <= 0.01 * ((back ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + 0.5
            h, w = back.shape[:2]
            gx, gy = np.meshgrid(np.arange(w), np.arange(h))
            x, y = gx + back[..., 0], gy + back[..., 1]
            ok &= (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
            self.flows.append(back)
            self.valid.append(ok)

    @property
    def valid_fraction(self) -> float:
        return float(np.mean([v.mean() for v in self.valid])) if self.valid else 0.0


def warping_error(frames: list[np.ndarray] | np.ndarray, ref: FlowReference) -> float:
    """Temporal flicker as warping error: frame t-1 warped onto t with the clean sequence's flow, mean abs
    difference (x255, over channels) on non-occluded pixels, averaged over t. Lower is steadier; the clean
    sequence's own figure is the floor (flow and interpolation error)."""
    errs = []
    for t, (flow, ok) in enumerate(zip(ref.flows, ref.valid), start=1):
        warped = _remap(np.asarray(frames[t - 1][..., :3], np.float32), flow)
        d = np.abs(np.asarray(frames[t][..., :3], np.float32) - warped).mean(axis=-1)
        errs.append(float(d[ok].mean()) * 255 if ok.any() else 0.0)
    return float(np.mean(errs)) if errs else 0.0


def static_mask(clean: list[np.ndarray] | np.ndarray, threshold: float = 2.0 / 255, erode: int = 2) -> np.ndarray:
    """Pixels that never change (max abs frame-to-frame change of any channel <= threshold) in a CLEAN sequence,
    eroded by ``erode`` px so motion borders are not counted; what ``flicker`` takes as ``static_mask``."""
    a = np.asarray(clean, np.float32)[..., :3]
    still = np.abs(np.diff(a, axis=0)).max(axis=(0, -1)) <= threshold
    if erode:
        still = cv2.erode(still.astype(np.uint8), np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)) > 0
    return still
