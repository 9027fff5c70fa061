"""Analyse a whole clip: shot cuts, and per shot the median of each frame feature, plus a recommendation
(which model, what strength) that `--model auto` / `--strength auto` use."""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..engine.models import registry
from ..errors import Cancelled
from ..io.decode import decode_frames
from ..io.probe import VideoInfo, probe
from .cuts import CutDetector
from .features import frame_features
from .grain import MAX_RATIO, central_luma, grain_factor, measure_grain

# Luma noise of i.i.d. RGB noise is sqrt(.2126^2 + .7152^2 + .0722^2) = 0.75 of the per-channel sigma;
# measured on the bundled sample: 0.74 (sigma 5..30).
LUMA_TO_RGB_SIGMA = 1 / 0.74
TEXTURE_FLOOR = 1.0  # the estimator reads ~1.0 on clean natural frames
BLOCKY = 1.3  # blockiness above this: heavy compression (held-out photos: clean 0.99-1.03, JPEG q20 1.73-2.11)
BANDED = 0.4  # banding above this: gradients went through 7 bits or fewer (7-bit 0.56+, clean 0.00-0.03)
# QP (median of the frames' means) from which `deblock` gains on the decoded frames, through the engine, per codec
# (benchmarks/bench_auto.py). A picture-based blockiness reads 0.96-1.06 on all of these: the codecs' in-loop
# filters hide the blocks.
# - H.264, the macroblocks' mean QP (x264 preset medium, CRF 18-42): on the held-out bigbuckbunny clip `deblock`
#   loses 0.08-0.88 dB up to QP 31.8 and gains from QP 34 (+0.01 there, +0.05-0.13 from QP 36); on the livelier
#   bikes.mp4 (a training clip) it gains from QP 30.5 (+0.17-0.30).
# - H.265, the slice QP (io.hevc_qp; x265's coding units sit below it, by cutree and adaptive quantisation: it reads
#   CRF + 8 at preset veryfast, CRF + 7 at medium): on bigbuckbunny `deblock` loses 0.30-1.10 dB up to slice QP 34,
#   0.02-0.07 at 37-40, and gains from 43 (+0.07-0.10; at medium from 40, +0.02 there, +0.09 at 43); on bikes.mp4 it
#   gains throughout (+0.14-0.39 from slice QP 31). Encoders without cutree put their coding units nearer the slice
#   QP, so this threshold leaves them alone a little longer: the safe side.
# - VP9, the quantiser index 0-255 (libvpx-vp9 good/cpu-used 4, CRF 15-63): on bigbuckbunny `deblock` loses
#   0.02-1.76 dB up to index 176 (CRF 45) and gains from 188 (+0.05 there, +0.08-0.14 from 196); on bikes.mp4
#   +0.21-0.44 throughout.
# - AV1, the shown frame's base_q_idx 0-255 (io.av1_qp; SVT-AV1 preset 8, CRF 20-63): on bigbuckbunny `deblock`
#   loses 0.02-0.88 dB up to index 236 (CRF 60) and gains +0.04 only at 253 (CRF 63), though +0.09-0.20 on bikes.mp4:
#   AV1's CDEF and loop restoration leave smooth losses rather than the blocks `deblock` learnt, so no threshold; the
#   index is reported.
HEAVY_QP = {"h264": 32.0, "hevc": 41.0, "vp9": 185.0}
QP_NAME = {"h264": "H.264 QP", "hevc": "H.265 slice QP", "vp9": "VP9 q index", "av1": "AV1 q index"}
QP_SCALE = {"libdav1d": "av1"}  # decoder name -> the key above where the two differ
# Estimated noise sigma (0-255) below which `--model auto` recommends nothing. Measured on the held-out photos with
# noise added, each model at the estimated strength (its strength blend on): on fine texture (the coffee photo) the
# estimator reads ~1 high (1.9 when clean) and the models cannot redraw it, so `denoise` loses there up to an
# estimated 5.8 (-0.6 dB) and `denoise-hq` up to 3.9 (-0.7 dB), while both gain on every photo above (from +0.8 dB).
DENOISE_FLOOR = {"denoise": 6.0, "denoise-hq": 4.5, "denoise-hq-int8": 4.5}
# The denoisers learnt white, Poisson-Gaussian and 2x2-blotch chroma noise: told the true sigma of coarser-grained
# noise they leave much of it. The strength `--strength auto` asks for is sigma x (1 + GRAIN_BOOST x (grain - 1)),
# the boost fit on training pictures only (6 scikit-image training samples and 2 bikes.mp4 frames as panning clips,
# blur-0.6 noise at sigma 5-30, `denoise`): mean PSNR 31.35 / 32.03 / 32.54 / 32.84 / 32.95 / 32.92 / 32.79 dB at
# 0 / 0.1 / 0.2 / 0.3 / 0.4 / 0.5 / 0.6. White noise (grain 1) is untouched.
GRAIN_BOOST = 0.4
COARSE_GRAIN = 2.5  # a grain factor above this is coarse grain: its sigma is measured over time (analyse)
# The boost's ceiling, fit on training pictures only for coarse grain (white noise blurred by a Gaussian of 1 px,
# sigma 5-30; `bench_auto_strength.py --pictures training --kinds coarse --boost-max X`): mean loss to the best
# strength 0.68 / 0.16 / 0.18 / 0.38 / 0.91 dB at 1.25 / 1.5 / 1.75 / 2.0 / 2.5. Blur-0.6 noise (grain ~2.2, a boost
# of ~1.5) is hardly touched.
GRAIN_BOOST_MAX = 1.5


def auto_strength(sigma: float, grain: float = 1.0) -> float:
    """The denoiser strength for noise of ``sigma`` (0-255) and ``grain`` (analysis.grain's factor, 1 = white)."""
    return sigma * min(1.0 + GRAIN_BOOST * (grain - 1.0), GRAIN_BOOST_MAX)


@dataclass
class Shot:
    start: int
    end: int  # exclusive
    features: dict[str, float] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass
class Analysis:
    path: str
    frames: int
    width: int
    height: int
    frame_rate: str
    shots: list[Shot]
    field_order: str | None = None  # interlaced: tt/bb/tb/bt (how `vdiff enhance --fields` will treat it)
    codec: str | None = None  # FFmpeg's decoder name: which scale the shots' `qp` is on (HEAVY_QP)

    @property
    def cuts(self) -> list[int]:
        return [s.start for s in self.shots[1:]]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cuts"] = self.cuts
        d["recommendation"] = recommend(self)
        return d


def rgb_sigma(luma_sigma: float) -> float:
    """Per-channel noise sigma (0-255), the unit the denoise models' strength uses."""
    return math.sqrt(max(luma_sigma ** 2 - TEXTURE_FLOOR ** 2, 0.0)) * LUMA_TO_RGB_SIGMA


def analyse(path: str, stride: int = 0, progress: Callable[[int, int], None] | None = None,
            cancel: threading.Event | None = None, info: VideoInfo | None = None, first: int = 0,
            last: int | None = None) -> Analysis:
    """Every frame of ``[first, last)`` (default: the whole clip) feeds the cut detector; every ``stride``-th frame
    (auto: ~5 per second) the features. Frame numbers stay the clip's own."""
    info = info or probe(path)
    last = info.frame_count if last is None else min(last, info.frame_count)
    first = min(max(first, 0), max(last - 1, 0))
    stride = stride or max(1, round(float(info.frame_rate) / 5))
    detector = CutDetector()
    cuts: list[int] = []
    samples: dict[int, dict[str, float]] = {}  # frame number: its features
    qps: dict[int, float] = {}  # every frame's QP (I, P and B frames differ by several steps)
    start, last_sample = first, -1  # the last confirmed shot start; the last frame whose features were taken
    recent: list[np.ndarray] = []  # the last three frames' central luma (grain.measure_grain of the middle one)
    n = first
    for f in decode_frames(info, first, last, qp=True):
        if cancel is not None and cancel.is_set():
            raise Cancelled("analysis cancelled")
        rgb = f.rgb[..., :3]
        for cut in detector.push(rgb):  # confirmed a few frames late (flashes are not cuts)
            cuts.append(first + cut)
            start = first + cut
        if f.qp is not None:
            qps[f.index] = f.qp
        recent = [*recent[-2:], central_luma(rgb)]
        if len(recent) == 3 and f.index - 1 in samples:  # the sampled frame's noise, measured over time
            found = measure_grain(*recent)
            if found is not None:
                samples[f.index - 1]["grain_ratio"] = found.ratio
                samples[f.index - 1]["grain_sigma"] = found.sigma
        if (f.index - start) % stride == 0 or last_sample < start:  # (every shot gets one, however short)
            samples[f.index] = frame_features(rgb)
            last_sample = f.index
        n = f.index + 1
        if progress:
            progress(n - first, last - first)
    cuts += [first + cut for cut in detector.flush()]
    bounds = [first, *cuts, n]
    shots = [Shot(a, b) for a, b in zip(bounds, bounds[1:])]
    per_shot: list[tuple[list[dict[str, float]], list[float]]] = [([], []) for _ in shots]
    for i, feats in samples.items():
        per_shot[bisect.bisect_right(cuts, i)][0].append(feats)
    for i, qp in qps.items():
        per_shot[bisect.bisect_right(cuts, i)][1].append(qp)
    for shot, (feats, shot_qps) in zip(shots, per_shot):
        keys = feats[0].keys() if feats else []
        shot.features = {k: float(np.median([s[k] for s in feats])) for k in keys
                         if k not in ("grain_ratio", "grain_sigma")}
        ratios = [s["grain_ratio"] for s in feats if "grain_ratio" in s]
        timed = [s["grain_sigma"] for s in feats if "grain_sigma" in s]
        if ratios and len(ratios) >= 0.3 * len(feats):  # enough sampled frames gave a figure (grain.measure_grain)
            shot.features["grain"] = grain_factor(float(np.median(ratios)))
        if feats:
            fine = rgb_sigma(shot.features["noise_sigma"])
            sigma = fine * shot.features.get("grain", 1.0)
            if shot.features.get("grain", 1.0) > COARSE_GRAIN and timed:
                # Coarse grain leaves the fine-scale estimate near the clean-texture floor, where a factor of 3-10
                # lifts texture as much as noise (a textured training picture read 20.7 for sigma 10): the noise's own
                # std over time is the figure there (9.8; within 10 % on every training picture).
                sigma = float(np.median(timed)) * LUMA_TO_RGB_SIGMA
                shot.features["grain"] = min(sigma / max(fine, 1.0), float(np.sqrt(MAX_RATIO)))
            shot.features["noise_sigma_rgb"] = sigma
        if feats and len(shot_qps) >= 0.9 * shot.frames:  # a QP on (nearly) every frame (io.codec_qp)
            shot.features["qp"] = float(np.median(shot_qps))
    return Analysis(path, n - first, info.width, info.height, str(info.frame_rate), shots, info.field_order, info.codec)


def recommend(analysis: Analysis, gpu: bool = False) -> dict:
    """Model and strength for the clip: de-block heavy compression or banding, else denoise at the measured sigma,
    else nothing (model None: the clip measures clean, and every model would cost it detail).

    ``gpu``: the job runs on a GPU, where `denoise-hq` costs about what `denoise` does (43 vs 47 fps at 1080p on an
    H200, docs/gpu.md) for +0.9 dB, so it is the denoiser there; on a CPU `denoise` (5x faster) stays the default.
    """
    models = registry()
    weights = [s.frames for s in analysis.shots if s.features]
    if not weights:
        return {"model": "denoise", "strength": None, "sigma": None, "grain": None, "blockiness": None, "banding": None,
                "qp": None, "reason": "no frames analysed"}

    def mean(key: str) -> float:  # frame-weighted over the analysed shots
        return float(np.average([s.features[key] for s in analysis.shots if s.features], weights=weights))

    sigma, block, band = mean("noise_sigma_rgb"), mean("blockiness"), mean("banding")
    coded = all("qp" in s.features for s in analysis.shots if s.features)
    qp = mean("qp") if coded else None
    grain = float(np.average([s.features.get("grain", 1.0) for s in analysis.shots if s.features], weights=weights))
    found = {"sigma": sigma, "grain": grain, "blockiness": block, "banding": band, "qp": qp}
    scale = QP_SCALE.get(analysis.codec or "", analysis.codec or "")
    qp_name, heavy_qp = QP_NAME.get(scale, "QP"), HEAVY_QP.get(scale)
    heavy = [f"{qp_name} {qp:.1f} >= {heavy_qp:g}"] if qp is not None and heavy_qp and qp >= heavy_qp else []
    heavy += [f"blockiness {block:.2f} > {BLOCKY}"] if block > BLOCKY else []
    heavy += [f"banding {band:.2f} > {BANDED}"] if band > BANDED else []
    if heavy and "deblock" in models:
        return {"model": "deblock", "strength": None, **found, "reason": heavy[0]}
    name = "denoise-hq" if gpu and "denoise-hq" in models else "denoise"
    spec = models.get(name)
    measured = (f"noise sigma {sigma:.1f} (0-255" + (f", grain {grain:.2f}" if grain > 1.0 else "")
                + f"), blockiness {block:.2f}, banding {band:.2f}"
                + (f", {qp_name} {qp:.1f}" if qp is not None else ""))
    floor = DENOISE_FLOOR.get(name, 0.0)
    if sigma < floor:
        return {"model": None, "strength": None, **found,
                "reason": f"nothing to fix: {measured}; below noise sigma {floor:g} `{name}` costs more detail than "
                          f"it removes noise"}
    strength = round(auto_strength(sigma, grain), 1)
    if spec and spec.strength:
        strength = float(min(max(strength, spec.strength.min), spec.strength.max))
    return {"model": name, "strength": strength, **found,
            "reason": measured + ("; on a GPU" if name == "denoise-hq" else "")}
