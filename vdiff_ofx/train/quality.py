"""Held-out evaluation of the `deblock` and `upscale2x` models against classical baselines.

One definition of the figures for models/<name>.md, benchmarks/bench_models_quality.py and the tests.
PSNR/SSIM come from vdiff_ofx.metrics. numpy/cv2/onnxruntime (+ PyAV for the video codecs) only --
no torch.

Deblock: each condition in compress.HELDOUT_CONDITIONS degrades the held-out set with the real
encoder; baselines are the degraded input, cv2.bilateralFilter and a light fastNlMeans, each given
its best setting of a small grid per condition (oracle tuning: fair to the baselines). RGB PSNR/SSIM.

Upscale: HR held-out images are downscaled 2x with cv2 INTER_AREA, cv2 INTER_CUBIC and MATLAB's antialiased
imresize bicubic (the SR literature's protocol); bicubic, Lanczos4 and the model upscale them back. SR convention: PSNR/SSIM on BT.601 luma (Y = 16 + 65.481 R + 128.553 G
+ 24.966 B on 0..1 RGB), outputs rounded to 8 bits, 2-pixel border cropped.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from vdiff_ofx.metrics import psnr, ssim
from vdiff_ofx.train import compress, data

BBB_CONTEXT = 3  # frames either side of each held-out demo-clip frame for the video conditions
Y_WEIGHTS = (65.481, 128.553, 24.966)  # BT.601 studio-range luma per unit of R, G, B (MATLAB rgb2ycbcr)


class OnnxImageModel:
    """Runs an exported image model on HxWx3 float images (reflect-pads to its size multiple)."""

    def __init__(self, path: str | Path, size_multiple: int = 1, threads: int = 2, extra: dict[str, float] | None = None):
        """``extra``: a value for each further graph input (e.g. upscale2x's "detail"), fed as N x 1 x 1 x 1."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.m = size_multiple
        self.extra = dict(extra or {})

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        ph, pw = -h % self.m, -w % self.m
        x = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else img
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        feeds = {"input": x, **{k: np.full((1, 1, 1, 1), v, np.float32) for k, v in self.extra.items()}}
        y = self.sess.run(["output"], feeds)[0][0].transpose(1, 2, 0)
        s = y.shape[0] // x.shape[2]
        return np.ascontiguousarray(y[: h * s, : w * s])


def fps(model, h: int, w: int, runs: int = 3) -> float:
    """Frames/s of `model` on an h x w x 3 input (one warm-up)."""
    x = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    model(x)
    t = time.perf_counter()
    for _ in range(runs):
        model(x)
    return runs / (time.perf_counter() - t)


@dataclass
class Result:
    """Mean PSNR/SSIM of one method on one condition, with its time per megapixel and chosen setting."""

    task: str
    condition: str
    method: str
    psnr: float
    ssim: float
    ms_per_mp: float = 0.0
    setting: str = ""
    per_image: dict[str, float] = field(default_factory=dict)


def _res(task: str, cond: str, method: str, score: tuple, ms: float = 0.0, setting: str = "") -> Result:
    return Result(task, cond, method, score[0], score[1], ms, setting, score[2])


def _score(refs: dict, outs: dict, fn=None) -> tuple[float, float, dict[str, float]]:
    """Mean PSNR, mean SSIM, per-image PSNR; `fn(ref, out) -> (psnr, ssim)` overrides the RGB metrics."""
    fn = fn or (lambda a, b: (psnr(a, b), ssim(a, b)))
    scores = {k: fn(refs[k], outs[k]) for k in refs}
    p = [v[0] for v in scores.values()]
    s = [v[1] for v in scores.values()]
    return float(np.mean(p)), float(np.mean(s)), {k: round(float(v[0]), 2) for k, v in scores.items()}


def _timed_map(fn, imgs: dict) -> tuple[dict, float]:
    t = time.perf_counter()
    out = {k: fn(v) for k, v in imgs.items()}
    return out, time.perf_counter() - t


def heldout(data_dir: Path | None) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """Held-out images (data.heldout_images) and, for the demo-clip frames, their real neighbours."""
    images = data.heldout_images(data_dir)
    clips: dict[str, list[np.ndarray]] = {}
    if data_dir is not None:
        for idx in data.HELDOUT_CLIP_FRAMES:
            only = tuple(range(idx - BBB_CONTEXT, idx + BBB_CONTEXT + 1))
            clips[f"bbb_f{idx}"] = data.video_frames(Path(data_dir) / data.HELDOUT_CLIP, only=only)
    return images, clips


def evaluate_deblock(model, images: dict, clips: dict, conditions=compress.HELDOUT_CONDITIONS,
                     baselines: bool = True) -> list[Result]:
    """Degraded / best bilateral / best light NLM / model per condition (mean over the held-out set)."""
    res: list[Result] = []
    for cond in conditions:
        refs, degr = compress.degrade_heldout(images, cond, clips)
        mp = sum(v.shape[0] * v.shape[1] for v in refs.values()) / 1e6
        res.append(_res("deblock", cond, "degraded input", _score(refs, degr)))
        if baselines:
            best = None
            for d, sc, ss in compress.BILATERAL_GRID:
                outs, sec = _timed_map(lambda im, d=d, sc=sc, ss=ss: compress.bilateral(im, d, sc, ss), degr)
                r = _res("deblock", cond, "cv2.bilateralFilter", _score(refs, outs), sec * 1000 / mp, f"d={d} sc={sc:g} ss={ss:g}")
                best = r if best is None or r.psnr > best.psnr else best
            res.append(best)
            best = None
            for h in compress.NLM_GRID:
                outs, sec = _timed_map(lambda im, h=h: compress.nlm(im, h), degr)
                r = _res("deblock", cond, "fastNlMeans (light)", _score(refs, outs), sec * 1000 / mp, f"h={h:g}")
                best = r if best is None or r.psnr > best.psnr else best
            res.append(best)
        if model is not None:
            model(next(iter(degr.values())))
            outs, sec = _timed_map(model, degr)
            res.append(_res("deblock", cond, "vdiff deblock", _score(refs, outs), sec * 1000 / mp))
    return res


def untouched(model, images: dict) -> tuple[float, dict[str, float]]:
    """How far the model moves clean 8-bit held-out frames: mean PSNR of its output against its input (and per image).

    Why: every held-out condition is degraded, so a deblocker that also smooths clean texture loses little there,
    yet an editor runs it on files that are only partly damaged. Higher is better; inf would be "untouched".
    """
    clean = {k: compress.to_u8(v).astype(np.float32) / 255 for k, v in images.items()}
    p, _, per = _score(clean, {k: model(v) for k, v in clean.items()})
    return p, per


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma on 0..1 (16..235 / 255), as in MATLAB rgb2ycbcr (the SR convention)."""
    r, g, b = Y_WEIGHTS
    return (16.0 + img[..., 0] * r + img[..., 1] * g + img[..., 2] * b) / 255.0


def sr_score(ref: np.ndarray, out: np.ndarray, border: int = 2) -> tuple[float, float]:
    """PSNR-Y / SSIM-Y after rounding to 8 bits and cropping `border` pixels."""
    q = lambda a: np.round(np.clip(a, 0, 1) * 255.0) / 255.0
    b = slice(border, -border) if border else slice(None)
    ya, yb = rgb_to_y(q(ref))[b, b], rgb_to_y(q(out))[b, b]
    return psnr(ya, yb), ssim(ya, yb)


# How the held-out LR images are made. "matlab" is the super-resolution literature's protocol (MATLAB's
# imresize(hr, 0.5): bicubic a=-0.5 widened 2x as an antialiasing filter), "area" cv2's box average, "cubic" cv2's
# plain bicubic sampling, which aliases (a cheap resize in an NLE or a camera's line skipping).
SR_DOWNSCALES = ("area", "cubic", "matlab")
# The downscale each value of upscale2x's `detail` input (0..1; --strength 0..100 %) was trained on.
DETAIL_OF_DOWNSCALE = {"cubic": 0.0, "area": 0.5, "matlab": 1.0}
_CV2_DOWN = {"area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}


def _keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _matlab_taps(factor: int) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's antialiased bicubic taps for an integer downscale (4 x factor of them) and their input offsets:
    output i is centred on input factor * i + (factor - 1) / 2."""
    centre = (factor - 1) / 2
    first = int(np.floor(centre)) + 1 - 2 * factor  # the window is symmetric about the centre: 4 x factor taps
    offsets = np.arange(first, first + 4 * factor)
    taps = _keys_cubic((offsets - centre) / factor)
    return taps / taps.sum(), offsets


_MATLAB_TAPS = _matlab_taps(2)[0]  # the 8 taps of imresize(x, 0.5)


def _matlab_down(img: np.ndarray, axis: int, factor: int) -> np.ndarray:
    taps, offsets = _matlab_taps(factor)
    n = img.shape[axis]
    idx = factor * np.arange(n // factor)[:, None] + offsets[None, :]
    idx = np.where(idx < 0, -idx - 1, np.where(idx >= n, 2 * n - 1 - idx, idx))  # symmetric borders, as MATLAB
    x = np.moveaxis(img, axis, 0)
    return np.moveaxis(np.einsum("k,mk...->m...", taps, x[idx]), 0, axis)


def downscale(img: np.ndarray, how: str, factor: int = 2) -> np.ndarray:
    """H x W x C float image (H, W multiples of ``factor``) -> H/factor x W/factor, by one of SR_DOWNSCALES."""
    h, w = img.shape[:2]
    if how == "matlab":
        return _matlab_down(_matlab_down(img.astype(np.float64), 0, factor), 1, factor).astype(np.float32)
    return cv2.resize(img, (w // factor, h // factor), interpolation=_CV2_DOWN[how])


def downscale2x(img: np.ndarray, how: str) -> np.ndarray:
    """H x W x C float image (even H, W) -> H/2 x W/2, by one of SR_DOWNSCALES."""
    return downscale(img, how, 2)


def sr_pairs(images: dict[str, np.ndarray], how: str, factor: int = 2) -> tuple[dict, dict]:
    """HR (cropped to a multiple of ``factor``) and its downscale (`how`: one of SR_DOWNSCALES)."""
    hr, lr = {}, {}
    for k, im in images.items():
        h, w = im.shape[:2]
        hr[k] = np.ascontiguousarray(im[: h - h % factor, : w - w % factor])
        lr[k] = downscale(hr[k], how, factor)
    return hr, lr


def sr_method(factor: int, detail_set: bool = False) -> str:
    """The method name of our ``factor``x model's rows (and of its rows with each downscale's own detail)."""
    return f"vdiff upscale{factor}x" + (", detail set" if detail_set else "")


def evaluate_upscale_detail_set(model_at: Callable[[float], Callable], images: dict, factor: int = 2) -> list[Result]:
    """The model with each downscale's own detail (``model_at(detail 0..1)`` builds it), as DETAIL_SET rows.

    Why: a detail-gated upscaler is scored twice -- at its default, which must serve unknown sources, and at
    the setting a user who knows the source would pick."""
    res: list[Result] = []
    for how, detail in DETAIL_OF_DOWNSCALE.items():
        ours = [r for r in evaluate_upscale(model_at(detail), images, (how,), factor) if r.method == sr_method(factor)]
        res += [replace(r, method=sr_method(factor, True), setting=f"detail {100 * detail:g} %") for r in ours]
    return res


def evaluate_upscale(model, images: dict, downscales=SR_DOWNSCALES, factor: int = 2) -> list[Result]:
    """bicubic / lanczos4 / model on each ``factor``x downscale (PSNR-Y, SSIM-Y; ms per output megapixel)."""
    res: list[Result] = []
    task = f"upscale{factor}x"
    for how in downscales:
        hr, lr = sr_pairs(images, how, factor)
        mp = sum(v.shape[0] * v.shape[1] for v in hr.values()) / 1e6
        cond = f"{how} {factor}x down"
        for name, interp in (("bicubic", cv2.INTER_CUBIC), ("lanczos4", cv2.INTER_LANCZOS4)):
            up = lambda im, i=interp: cv2.resize(im, (im.shape[1] * factor, im.shape[0] * factor), interpolation=i)
            outs, sec = _timed_map(up, lr)
            res.append(_res(task, cond, name, _score(hr, outs, sr_score), sec * 1000 / mp))
        if model is not None:
            model(next(iter(lr.values())))
            outs, sec = _timed_map(model, lr)
            res.append(_res(task, cond, sr_method(factor), _score(hr, outs, sr_score), sec * 1000 / mp))
    return res


def format_table(results: list[Result]) -> str:
    """Markdown: task | condition | method | PSNR | SSIM | ms/MP | setting."""
    lines = ["| task | condition | method | PSNR dB | SSIM | ms/MP | setting |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.task} | {r.condition} | {r.method} | {r.psnr:.2f} | {r.ssim:.4f} | {r.ms_per_mp:.0f} | {r.setting} |")
    return "\n".join(lines)


def summary(results: list[Result], method: str) -> tuple[float, float]:
    """Mean PSNR/SSIM of one method over all conditions."""
    rows = [r for r in results if r.method == method]
    return float(np.mean([r.psnr for r in rows])), float(np.mean([r.ssim for r in rows]))
