"""PSNR/SSIM, the fastNlMeans baseline, and held-out evaluation of an exported ONNX denoiser.

Why: one place defines how quality is measured so the training figures (models/denoise.md), the
benchmark and the tests agree. numpy/cv2/onnxruntime only -- usable without torch.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vdiff_ofx.engine.enhancer import tta_average

SIGMAS: tuple[int, ...] = (15, 25, 50)
NLM_H_FACTORS: tuple[float, ...] = (0.5, 0.65, 0.8, 1.0)  # h = factor * sigma (0-255); best per sigma is kept


def psnr(ref: np.ndarray, img: np.ndarray) -> float:
    """PSNR in dB for images in 0..1."""
    mse = float(np.mean((ref.astype(np.float64) - img.astype(np.float64)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


def ssim(ref: np.ndarray, img: np.ndarray) -> float:
    """SSIM (Wang et al. 2004): gaussian 11x11 window, sigma 1.5, K=(0.01, 0.03), L=1, valid region, mean over channels."""
    c1, c2 = 0.01**2, 0.03**2
    g = cv2.getGaussianKernel(11, 1.5)
    win = (g @ g.T).astype(np.float64)

    def filt(a: np.ndarray) -> np.ndarray:
        return cv2.filter2D(a, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    vals = []
    for ch in range(ref.shape[2]):
        x, y = ref[:, :, ch].astype(np.float64), img[:, :, ch].astype(np.float64)
        mx, my = filt(x), filt(y)
        sxx, syy, sxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(m.mean())
    return float(np.mean(vals))


def add_gaussian_noise(img: np.ndarray, sigma255: float, key: str) -> np.ndarray:
    """Fixed (seeded by image name + sigma) AWGN, clipped to 0..1 as a real frame would be."""
    rng = np.random.default_rng(zlib.crc32(f"{key}:{sigma255}".encode()))
    noise = rng.standard_normal(img.shape).astype(np.float32) * np.float32(sigma255 / 255.0)
    return np.clip(img + noise, 0.0, 1.0).astype(np.float32)


def nlm_denoise(noisy: np.ndarray, h: float) -> np.ndarray:
    """OpenCV fastNlMeansDenoisingColored (7x7 template, 21x21 search), h = hColor."""
    u8 = cv2.cvtColor((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(u8, None, float(h), float(h), 7, 21)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def cbm3d_denoise(noisy: np.ndarray, sigma255: float) -> np.ndarray:
    """CBM3D (the `bm3d` package, Mäkinen et al.'s reference binaries; `pip install bm3d`), the classical
    state of the art the brief measures `denoise` against (published: 30.71 dB on CBSD68 at sigma 25)."""
    import bm3d

    return np.clip(bm3d.bm3d_rgb(noisy.astype(np.float64), sigma255 / 255.0), 0, 1).astype(np.float32)


class OnnxDenoiser:
    """Runs an exported denoiser on HxWx3 images, padding to the model's size multiple."""

    def __init__(self, path: str | Path, size_multiple: int = 4, threads: int = 2, tta: int = 1,
                 blend: tuple | list = ()):
        """``blend``: the manifest's strength.blend pairs, applied as the engine applies them (none: the network)."""
        import onnxruntime as ort

        from vdiff_ofx.engine.models import Strength

        self.knob = Strength(blend=tuple((float(a), float(w)) for a, w in blend))

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.m = size_multiple
        self.tta = tta

    def __call__(self, img: np.ndarray, sigma255: float) -> np.ndarray:
        h, w = img.shape[:2]
        ph, pw = -h % self.m, -w % self.m
        x = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else img
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        s = np.full((1, 1, 1, 1), sigma255 / 255.0, np.float32)
        y = tta_average(lambda v: self.sess.run(["output"], {"input": v, "sigma": s})[0], x, self.tta)
        y = self.knob.keep(x, y, sigma255)[0].transpose(1, 2, 0)
        return y[:h, :w]


@dataclass
class Row:
    """Mean figures over the held-out set at one sigma."""

    sigma: int
    noisy: tuple[float, float] = (0.0, 0.0)
    nlm: tuple[float, float] = (0.0, 0.0)
    nlm_h: float = 0.0
    nlm_ms_per_mp: float = 0.0
    model: tuple[float, float] = (0.0, 0.0)
    model_ms_per_mp: float = 0.0
    per_image: dict[str, float] = field(default_factory=dict)  # model PSNR per image
    cbm3d: tuple[float, float] | None = None
    cbm3d_ms_per_mp: float = 0.0


def _timed(fn, *args) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def evaluate(model: OnnxDenoiser | None, images: dict[str, np.ndarray], sigmas=SIGMAS, nlm: bool = True,
             cbm3d: bool = False) -> list[Row]:
    """Noisy / fastNlMeans (best h of NLM_H_FACTORS per sigma) / optional CBM3D / model, mean PSNR and SSIM."""
    rows = []
    mp = sum(im.shape[0] * im.shape[1] for im in images.values()) / 1e6
    for sigma in sigmas:
        row = Row(sigma)
        noisy = {k: add_gaussian_noise(im, sigma, k) for k, im in images.items()}
        row.noisy = _mean([(psnr(images[k], n), ssim(images[k], n)) for k, n in noisy.items()])
        if nlm:
            best = None
            for f in NLM_H_FACTORS:
                outs, secs = zip(*(_timed(nlm_denoise, n, f * sigma) for n in noisy.values()))
                score = _mean([(psnr(images[k], o), ssim(images[k], o)) for k, o in zip(noisy, outs)])
                if best is None or score[0] > best[0][0]:
                    best = (score, f * sigma, sum(secs) * 1000 / mp)
            row.nlm, row.nlm_h, row.nlm_ms_per_mp = best
        if cbm3d:
            outs, secs = zip(*(_timed(cbm3d_denoise, n, sigma) for n in noisy.values()))
            row.cbm3d = _mean([(psnr(images[k], o), ssim(images[k], o)) for k, o in zip(noisy, outs)])
            row.cbm3d_ms_per_mp = sum(secs) * 1000 / mp
        if model is not None:
            model(next(iter(noisy.values())), sigma)  # warm-up
            outs, secs = zip(*(_timed(model, n, sigma) for n in noisy.values()))
            scores = [(psnr(images[k], o), ssim(images[k], o)) for k, o in zip(noisy, outs)]
            row.model, row.model_ms_per_mp = _mean(scores), sum(secs) * 1000 / mp
            row.per_image = {k: float(round(s[0], 2)) for k, s in zip(noisy, scores)}
        rows.append(row)
    return rows


def _mean(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    a = np.asarray(pairs, np.float64).mean(axis=0)
    return float(a[0]), float(a[1])


def format_table(rows: list[Row]) -> str:
    """Markdown table: PSNR dB / SSIM per method, and ms per megapixel (CBM3D columns when it was run)."""
    bm = any(r.cbm3d is not None for r in rows)
    lines = [
        "| sigma | noisy PSNR/SSIM | fastNlMeans PSNR/SSIM (h) |" + (" CBM3D PSNR/SSIM |" if bm else "")
        + " vdiff denoise PSNR/SSIM | fastNlMeans ms/MP |" + (" CBM3D ms/MP |" if bm else "") + " denoise ms/MP |",
        "|---|---|---|---|---|---|" + ("---|---|" if bm else ""),
    ]
    for r in rows:
        cb = f" {r.cbm3d[0]:.2f} / {r.cbm3d[1]:.4f} |" if bm and r.cbm3d else (" - |" if bm else "")
        cbt = f" {r.cbm3d_ms_per_mp:.0f} |" if bm and r.cbm3d else (" - |" if bm else "")
        lines.append(
            f"| {r.sigma} | {r.noisy[0]:.2f} / {r.noisy[1]:.4f} | {r.nlm[0]:.2f} / {r.nlm[1]:.4f} (h={r.nlm_h:g}) |{cb}"
            f" {r.model[0]:.2f} / {r.model[1]:.4f} | {r.nlm_ms_per_mp:.0f} |{cbt} {r.model_ms_per_mp:.0f} |"
        )
    return "\n".join(lines)
