"""Held-out evaluation of temporal denoising: noisy input, cv2.fastNlMeansDenoisingColoredMulti, the single-frame
`denoise` model and `denoise-temporal`, on a stretch of the held-out demo clip and a synthetic sequence (static
background, moving object), at sigma 15/25/50 (AWGN, independent per frame, clipped).

Figures per method: PSNR and SSIM (mean over frames), warping error (vdiff_ofx.metrics.warping_error: frame t-1
warped onto t with Farneback flow of the CLEAN frames, occlusions masked by forward-backward consistency, x255),
static flicker (metrics.flicker on metrics.static_mask of the clean sequence, x255), and on the synthetic
sequence the PSNR inside the moving object's (dilated) mask -- a ghosting check.

numpy/cv2/onnxruntime only: the models run through the engine's Enhancer, windows built like the pipeline's
(vdiff_ofx.ops.window: edge frames replicated).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vdiff_ofx import metrics
from vdiff_ofx.ops.window import windows
from vdiff_ofx.train import sequences

SIGMAS: tuple[int, ...] = (15, 25, 50)
NLM_H_FACTORS: tuple[float, ...] = (0.35, 0.45, 0.6, 0.8)  # h = hColor = factor * sigma; best (by PSNR) kept per sigma
NLM_WINDOW = 5
NOISE_SEED = 7


@dataclass
class Scores:
    psnr: float
    ssim: float
    warp: float
    flicker: float
    moving_psnr: float | None = None
    secs: float = 0.0
    note: str = ""


@dataclass
class Sequence:
    name: str
    clean: np.ndarray  # F x H x W x 3
    moving: np.ndarray | None = None  # F x H x W bool, where an object moves
    flow: metrics.FlowReference | None = None
    still: np.ndarray | None = None
    results: dict[int, dict[str, Scores]] = field(default_factory=dict)

    def prepare(self) -> Sequence:
        self.flow = metrics.FlowReference(self.clean)
        self.still = metrics.static_mask(self.clean)
        return self


def score(seq: Sequence, out: list[np.ndarray] | np.ndarray, secs: float = 0.0, note: str = "") -> Scores:
    out = np.asarray(out, np.float32)[..., :3]
    p = float(np.mean([metrics.psnr(c, o) for c, o in zip(seq.clean, out)]))
    s = float(np.mean([metrics.ssim(c, o) for c, o in zip(seq.clean, out)]))
    mov = None
    if seq.moving is not None:
        mse = np.mean([((c - o) ** 2)[m].mean() for c, o, m in zip(seq.clean, out, seq.moving)])
        mov = float(10 * np.log10(1.0 / max(mse, 1e-12)))
    return Scores(p, s, metrics.warping_error(out, seq.flow), metrics.flicker(list(out), seq.still), mov, secs, note)


def _u8_bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def nlm_multi(noisy: np.ndarray, h: float, window: int = NLM_WINDOW, only: list[int] | None = None) -> list[np.ndarray]:
    """cv2.fastNlMeansDenoisingColoredMulti per frame (template 7, search 21, h = hColor), edges replicated."""
    r = window // 2
    u8 = [_u8_bgr(f) for f in noisy]
    padded = [u8[0]] * r + u8 + [u8[-1]] * r
    out = []
    for i in (only if only is not None else range(len(u8))):
        d = cv2.fastNlMeansDenoisingColoredMulti(padded, i + r, window, None, float(h), float(h), 7, 21)
        out.append(cv2.cvtColor(d, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    return out


def tune_nlm(seq: Sequence, noisy: np.ndarray, sigma: float) -> float:
    """Best h of NLM_H_FACTORS * sigma by PSNR on the central half of the middle frame (cheap, and favours the
    baseline: it is tuned on the test sequence itself)."""
    f, h, w = noisy.shape[:3]
    ys, xs = slice(h // 4, h // 4 + h // 2), slice(w // 4, w // 4 + w // 2)
    mid = f // 2
    lo, hi = max(0, mid - NLM_WINDOW // 2), min(f, mid + NLM_WINDOW // 2 + 1)
    crop = noisy[lo:hi, ys, xs]
    best = None
    for k in NLM_H_FACTORS:
        out = nlm_multi(crop, k * sigma, only=[mid - lo])[0]
        p = metrics.psnr(seq.clean[mid, ys, xs], out)
        if best is None or p > best[0]:
            best = (p, k * sigma)
    return best[1]


def run_enhancer(enh, noisy: np.ndarray) -> list[np.ndarray]:
    """Every frame through Enhancer.process with the pipeline's windows (edge frames replicated)."""
    out = [None] * len(noisy)
    for idx, _, win in windows(enumerate(noisy), enh.window):
        out[idx] = enh.process(win)
    return out


def temporal_spec(path: Path, frames: int, size_multiple: int, align: str = "none"):
    """A ModelSpec for a freshly trained file not (yet) in the manifest (``align``: its manifest `align` key)."""
    from vdiff_ofx.engine.models import ModelSpec, Strength, sha256_file

    return ModelSpec(name="denoise-temporal", file=Path(path), sha256=sha256_file(path), task="denoise",
                     temporal_window=frames, size_multiple=size_multiple, strength=Strength(),
                     extra={"align": align})


def load_sequences(data_dir: Path | None, frames: int = 20, clip_size: tuple[int, int] = (480, 272),
                   synth_size: tuple[int, int] = (256, 192)) -> list[Sequence]:
    seqs = []
    if data_dir is not None:
        seqs.append(Sequence(f"bigbuckbunny f30-{30 + frames - 1} {clip_size[0]}x{clip_size[1]}",
                             sequences.heldout_clip(data_dir, 30, frames, clip_size)))
    clean, moving = sequences.heldout_synthetic(frames, synth_size)
    seqs.append(Sequence(f"synthetic {synth_size[0]}x{synth_size[1]} (static bg + moving disc)", clean, moving))
    return [s.prepare() for s in seqs]


def evaluate(seqs: list[Sequence], methods: dict[str, object], sigmas=SIGMAS, nlm: bool = True,
             log=print) -> None:
    """Fill seq.results[sigma][method] for noisy, NLM-multi (tuned) and every Enhancer in ``methods``."""
    for seq in seqs:
        for sigma in sigmas:
            noisy = sequences.add_noise_np(seq.clean, sigma, NOISE_SEED + sigma)
            res = seq.results.setdefault(sigma, {})
            res["noisy"] = score(seq, noisy)
            if nlm:
                t = time.perf_counter()
                h = tune_nlm(seq, noisy, sigma)
                t1 = time.perf_counter()
                out = nlm_multi(noisy, h)
                res[f"NLM-multi T={NLM_WINDOW}"] = score(seq, out, time.perf_counter() - t1, f"h={h:g}")
                log(f"  {seq.name} sigma {sigma}: NLM h={h:g} (tuning {t1 - t:.0f}s, run {time.perf_counter() - t1:.0f}s)")
            for name, enh in methods.items():
                enh.strength = float(sigma)
                t = time.perf_counter()
                out = run_enhancer(enh, noisy)
                res[name] = score(seq, out, time.perf_counter() - t)


def format_tables(seqs: list[Sequence]) -> str:
    lines = []
    for seq in seqs:
        mov = seq.moving is not None
        lines.append(f"### {seq.name}, {len(seq.clean)} frames\n")
        lines.append(f"Static-mask coverage {seq.still.mean() * 100:.0f}%, non-occluded flow coverage "
                     f"{seq.flow.valid_fraction * 100:.0f}%; clean reference: warp error "
                     f"{metrics.warping_error(seq.clean, seq.flow):.2f}, static flicker "
                     f"{metrics.flicker(list(seq.clean), seq.still):.2f}.\n")
        head = "| sigma | method | PSNR dB | SSIM | warp err | static flicker |" + (" moving PSNR |" if mov else "") + " s/frame |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for sigma, res in seq.results.items():
            for name, s in res.items():
                label = name + (f" ({s.note})" if s.note else "")
                row = f"| {sigma} | {label} | {s.psnr:.2f} | {s.ssim:.4f} | {s.warp:.2f} | {s.flicker:.2f} |"
                if mov:
                    row += f" {s.moving_psnr:.2f} |"
                row += f" {s.secs / len(seq.clean):.2f} |" if s.secs else " - |"
                lines.append(row)
        lines.append("")
    lines.append("warp err / static flicker: mean |frame t - frame t-1| x255 after warping with the clean sequence's flow "
                 "(non-occluded pixels) / on pixels static in the clean sequence; lower is steadier. "
                 f"NLM-multi: cv2.fastNlMeansDenoisingColoredMulti, temporal window {NLM_WINDOW}, template 7, search 21, "
                 f"h = hColor tuned per sigma over {{{', '.join(f'{k:g}' for k in NLM_H_FACTORS)}}} x sigma. "
                 "Models through the engine's Enhancer (onnxruntime CPU), strength = the true sigma. "
                 "Seconds per frame on the shared 2-core CPU.")
    return "\n".join(lines)


def run_benchmark(data_dir: Path | None, temporal_model: Path | str | None = None, frames: int = 5,
                  size_multiple: int = 4, sigmas=SIGMAS, nlm: bool = True, threads: int = 2, log=print,
                  seq_frames: int = 20, align: str = "none") -> str:
    """The whole benchmark; returns markdown tables. The single-frame models are used when the manifest lists them."""
    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.models import get_model, registry
    from vdiff_ofx.engine.providers import Backend

    backend = Backend(providers=["cpu"], threads=threads)
    methods: dict[str, object] = {}
    for name in ("denoise", "denoise-hq"):  # the fast and the quality single-frame models, where listed
        if name in registry():
            methods[f"{name} (single-frame)"] = Enhancer(get_model(name), backend)
    spec = temporal_spec(Path(temporal_model), frames, size_multiple, align) if temporal_model else get_model("denoise-temporal")
    temporal = Enhancer(spec, backend)
    if temporal.spatial_spec is not None:  # the shipped blend, and the temporal network alone
        methods[f"denoise-temporal T={spec.temporal_window} alone"] = Enhancer(spec, backend, spatial="none")
        methods[f"denoise-temporal T={spec.temporal_window} + {temporal.spatial_spec.name} "
                f"(share {temporal.temporal_share:g})"] = temporal
    else:
        methods[f"denoise-temporal T={spec.temporal_window}"] = temporal
    seqs = load_sequences(data_dir, seq_frames)
    t = time.time()
    evaluate(seqs, methods, sigmas, nlm, log)
    log(f"  evaluation {time.time() - t:.0f}s")
    return format_tables(seqs)
