"""Fit a denoiser's strength blend: the share of the network's change worth keeping at each strength.

    python -m vdiff_ofx.train.blend --model denoise [--knots 0,1,2,...] [--patches 96] [--seed 0]

Why: a small denoiser cannot redraw fine texture exactly, so at low strengths it removes more detail than noise
(`denoise` returned clean held-out photos at 37.5 dB at strength 0). For each strength knot this adds the training
noise mix (degrade.add_noise: AWGN, Poisson-Gaussian, chroma) at exactly that sigma to clean *training* patches
(data.training_sources, never the held-out set), runs the shipped network through the engine's session (its blend
off), and takes the share w of its change y - x (output x + w (y - x)) with the best mean PSNR over the patches,
on a 0.005 grid. Shares are made non-decreasing, and strength 0 is exactly 0 (an identity). It prints the manifest
line (`strength.blend`) and the mean PSNR of input, network and blend per knot on those patches.
"""
from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
import torch

from vdiff_ofx.engine.models import get_model
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.engine.session import ModelSession
from vdiff_ofx.train import data
from vdiff_ofx.train.degrade import add_noise
from vdiff_ofx.train.denoise import SOURCE_WEIGHTS

KNOTS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50)


def fit_shares(session: ModelSession, clean: np.ndarray, knots: tuple[float, ...], seed: int,
               batch: int = 8) -> list[dict[str, float]]:
    """Per knot: the share kept and the mean per-patch PSNR (dB, 0-1 range) of input, network and blend on ``clean``
    (N x 3 x H x W). The share maximises that mean, the figure the held-out tables report (mean PSNR per image):
    a pooled MSE would let the few textured patches, where the network errs most, set it for all."""
    rows = []
    grid = np.linspace(0.0, 1.0, 201)
    for k, sigma in enumerate(knots):
        gen = torch.Generator().manual_seed(seed * 1000 + k)
        noisy, _ = add_noise(torch.from_numpy(clean), gen, sigma=torch.tensor(sigma / 255.0))
        x = noisy.numpy()
        y = np.concatenate([session.run(x[i:i + batch], float(sigma)) for i in range(0, len(x), batch)])
        r, t = (y - x).astype(np.float64), (clean - x).astype(np.float64)
        # a patch's blend error is  |t - w r|^2 = tt - 2 w rt + w^2 rr: three sums per patch say it for every w
        tt, rt, rr = ((a * b).reshape(len(x), -1).mean(1) for a, b in ((t, t), (r, t), (r, r)))
        mse = np.maximum(tt[None] - 2 * grid[:, None] * rt[None] + grid[:, None] ** 2 * rr[None], 1e-12)
        psnr = (-10 * np.log10(mse)).mean(1)  # mean over patches, per w on the grid
        rows.append({"sigma": float(sigma), "psnr": psnr, "best": float(grid[int(np.argmax(psnr))])})
    share = 0.0
    for row in rows:  # non-decreasing: more noise never earns the network less of a say
        share = row["share"] = max(share, row["best"]) if row["sigma"] > 0 else 0.0
        psnr = row.pop("psnr")
        row["input"], row["network"] = float(psnr[0]), float(psnr[-1])
        row["blend"] = float(np.interp(share, grid, psnr))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vdiff_ofx.train.blend", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="denoise", help="a registered single-frame denoiser (manifest name)")
    p.add_argument("--knots", default=",".join(str(k) for k in KNOTS), help="strengths (sigma on 0-255) to fit at")
    p.add_argument("--patches", type=int, default=96)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    p.add_argument("--photos-dir", default=None, help=data.PHOTOS_HELP)
    p.add_argument("--nature-dir", default=None, help=data.NATURE_DIR_HELP)
    args = p.parse_args(argv)
    spec = get_model(args.model)
    if not spec.strength or spec.scale != 1 or spec.temporal_window != 1:
        raise SystemExit(f"{args.model}: needs a single-frame model at scale 1 with a strength input")
    raw = dataclasses.replace(spec, strength=dataclasses.replace(spec.strength, blend=()))
    session = ModelSession(raw, Backend(providers=["cpu"], threads=args.threads))
    sources = data.training_sources(data.find_data_dir(args.data_dir), args.seed,
                                    photos_root=data.find_photos_root(args.photos_dir),
                                    nature_root=data.nature_dir(args.nature_dir))
    clean = data.PatchSampler(sources, SOURCE_WEIGHTS, args.patch, args.seed).batch(args.patches)
    knots = tuple(float(k) for k in args.knots.split(","))
    rows = fit_shares(session, np.ascontiguousarray(clean, dtype=np.float32), knots, args.seed)
    print(f"{'sigma':>5} {'share':>6} {'input':>7} {'network':>8} {'blend':>7}  (PSNR dB on {len(clean)} training "
          f"patches of {args.patch}²)")
    for r in rows:
        print(f"{r['sigma']:5g} {r['share']:6.3f} {r['input']:7.2f} {r['network']:8.2f} {r['blend']:7.2f}")
    keep = next((i + 1 for i, r in enumerate(rows) if round(r["share"], 3) >= 1.0), len(rows))  # 1 holds beyond
    pairs = ", ".join(f"[{r['sigma']:g}, {r['share']:.3f}]" for r in rows[:keep])
    print(f"manifest ({args.model}): strength: {{..., blend: [{pairs}]}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
