"""How `denoise-temporal` and its spatial partner should be mixed, measured on TRAINING content only.

    python benchmarks/tune_temporal_share.py [--data-dir DIR] [--shares 0.3 0.5 0.7 1] [--threads 2]

The manifest's `temporal_share` was picked with this (0.5), so the held-out benchmark (bench_temporal.py) stays
held out. Sequences: 20 frames of bikes.mp4 from frame 40 (a training clip, 480x272; handheld motion) and the
held-out sequence's motion over training images (skimage rocket as background, stereo_motorcycle as the disc).
Per sigma: PSNR, moving-object PSNR, warp error and static flicker of the spatial model alone, the temporal model
alone and the blend at each share (weights: vdiff_ofx/engine/enhancer.py). ~3 min on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vdiff_ofx.ops.window import windows
from vdiff_ofx.train import data, sequences, temporal_eval


def training_sequences(data_dir: Path) -> list[temporal_eval.Sequence]:
    im = data.skimage_images(("rocket", "stereo_motorcycle"))
    clean, moving = sequences.heldout_synthetic(20, (256, 192), background=im["rocket"], texture=im["stereo_motorcycle"])
    clip = sequences.clip_uint8(data_dir / "bikes.mp4", 40, 20, (480, 272)).astype(np.float32) / 255
    return [temporal_eval.Sequence("bikes.mp4 f40-59 480x272 (training clip)", clip).prepare(),
            temporal_eval.Sequence("rocket + moving stereo_motorcycle disc 256x192", clean, moving).prepare()]


def main() -> int:
    from vdiff_ofx.engine.enhancer import Enhancer, temporal_weight
    from vdiff_ofx.engine.providers import Backend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help=sequences.TRAIN_DATA_HELP)
    ap.add_argument("--shares", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--sigmas", type=int, nargs="+", default=list(temporal_eval.SIGMAS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    backend = Backend(providers=["cpu"], threads=args.threads)
    temporal = Enhancer("denoise-temporal", backend, spatial="none")
    spatial = Enhancer(temporal.spec.extra.get("spatial", "denoise-hq"), backend)
    n = temporal.window - 1
    print("| sequence | sigma | method | PSNR dB | moving PSNR | warp err | static flicker |\n|---|---|---|---|---|---|---|")
    for seq in training_sequences(sequences.find_train_data(args.data_dir)):
        for sigma in args.sigmas:
            noisy = sequences.add_noise_np(seq.clean, sigma, temporal_eval.NOISE_SEED + sigma)
            temporal.strength = spatial.strength = float(sigma)
            t_out, s_out, support = [], [], []
            for _, _, win in windows(enumerate(noisy), temporal.window):
                t_out.append(temporal.process(win))
                s_out.append(spatial.process([win[len(win) // 2]]))
                support.append(temporal.aligner.align(win, float(sigma))[1])
            rows = {f"{spatial.spec.name} alone": s_out, "denoise-temporal alone": t_out}
            for k in args.shares:
                rows[f"blend, share {k:g}"] = [s + temporal_weight(u, k, n)[..., None] * (t - s)
                                               for t, s, u in zip(t_out, s_out, support)]
            for name, out in rows.items():
                r = temporal_eval.score(seq, out)
                mov = f"{r.moving_psnr:.2f}" if r.moving_psnr is not None else "-"
                print(f"| {seq.name} | {sigma} | {name} | {r.psnr:.2f} | {mov} | {r.warp:.2f} | {r.flicker:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
