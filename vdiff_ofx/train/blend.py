"""Fit a denoiser's strength blend: the share of the network's change worth keeping at each strength.

    python -m vdiff_ofx.train.blend --model denoise [--knots 0,1,2,...] [--patches 96] [--windows 24] [--seed 0]

Why: a small denoiser cannot redraw fine texture exactly, so at low strengths it removes more detail than noise
(`denoise` returned clean held-out photos at 37.5 dB at strength 0). For each strength knot this adds noise at
exactly that sigma to clean *training* data (never the held-out set) and runs the shipped model through the engine
with its blend off: single-frame models on patches of data.training_sources with the training noise mix
(degrade.add_noise: AWGN, Poisson-Gaussian, chroma); temporal models on windows of the training clips with white
noise, through the whole engine path (flow alignment, the spatial companion). The share w of the network's change
(output = input + w x change; for a temporal model the change to the middle frame) is the one with the best mean
PSNR over the samples, on a 0.005 grid. Shares are made non-decreasing, and strength 0 is exactly 0 (an identity).
It prints the manifest line (`strength.blend`) and the mean PSNR of input, network and blend per knot.
"""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.engine.models import ModelSpec, get_model
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.engine.session import ModelSession
from vdiff_ofx.train import data
from vdiff_ofx.train.degrade import add_noise
from vdiff_ofx.train.denoise import SOURCE_WEIGHTS

KNOTS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50)


def fit_shares(outputs: Callable[[int, float], tuple[np.ndarray, np.ndarray, np.ndarray]],
               knots: tuple[float, ...]) -> list[dict[str, float]]:
    """Per knot: the share kept and the mean per-sample PSNR (dB, 0-1 range) of input, network and blend.

    ``outputs(k, sigma)`` gives N x C x H x W (clean, what the engine returns keeping none of the network's change,
    what it returns keeping all of it). The engine's output is linear in the share, so those two say every share.
    The share maximises the mean PSNR per sample, the figure the held-out tables report (mean PSNR per image): a
    pooled MSE would let the few textured samples, where the network errs most, set it for all.
    """
    rows = []
    grid = np.linspace(0.0, 1.0, 201)
    for k, sigma in enumerate(knots):
        clean, none, full = (a.astype(np.float64) for a in outputs(k, sigma))
        r, t = full - none, clean - none
        # a sample's blend error is  |t - w r|^2 = tt - 2 w rt + w^2 rr: three sums per sample say it for every w
        tt, rt, rr = ((a * b).reshape(len(t), -1).mean(1) for a, b in ((t, t), (r, t), (r, r)))
        mse = np.maximum(tt[None] - 2 * grid[:, None] * rt[None] + grid[:, None] ** 2 * rr[None], 1e-12)
        psnr = (-10 * np.log10(mse)).mean(1)  # mean over samples, per w on the grid
        rows.append({"sigma": float(sigma), "psnr": psnr, "best": float(grid[int(np.argmax(psnr))])})
    share = 0.0
    for row in rows:  # non-decreasing: more noise never earns the network less of a say
        share = row["share"] = max(share, row["best"]) if row["sigma"] > 0 else 0.0
        psnr = row.pop("psnr")
        row["input"], row["network"] = float(psnr[0]), float(psnr[-1])
        row["blend"] = float(np.interp(share, grid, psnr))
    return rows


def single_frame_outputs(session: ModelSession, clean: np.ndarray, seed: int, batch: int = 8):
    """``fit_shares``'s outputs for a single-frame model: the training noise mix at exactly sigma on ``clean``
    patches (N x 3 x H x W); keeping none of the change is the noisy input itself."""

    def outputs(k: int, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gen = torch.Generator().manual_seed(seed * 1000 + k)
        x = add_noise(torch.from_numpy(clean), gen, sigma=torch.tensor(sigma / 255.0))[0].numpy()
        return clean, x, np.concatenate([session.run(x[i:i + batch], float(sigma)) for i in range(0, len(x), batch)])

    return outputs


def temporal_outputs(spec: ModelSpec, windows: list[np.ndarray], seed: int, backend: Backend):
    """``fit_shares``'s outputs for a temporal model: each clean window (T x H x W x 3) gets white noise at exactly
    sigma on every frame, and goes through the whole engine (flow alignment, the spatial companion's blend) twice:
    with a blend that keeps none of the temporal network's change, and with none (all of it)."""
    knob = spec.strength
    none = Enhancer(dataclasses.replace(spec, strength=dataclasses.replace(
        knob, blend=((knob.min, 0.0), (knob.max, 0.0)))), backend)
    full = Enhancer(dataclasses.replace(spec, strength=dataclasses.replace(knob, blend=())), backend)
    mid = spec.temporal_window // 2

    def outputs(k: int, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed * 1000 + k)
        none.strength = full.strength = float(sigma)
        outs: tuple[list, list, list] = ([], [], [])
        for w in windows:
            noisy = [np.clip(f + rng.standard_normal(f.shape).astype(np.float32) * np.float32(sigma / 255), 0, 1)
                     for f in w]
            for acc, img in zip(outs, (w[mid], none.process(noisy), full.process(noisy))):
                acc.append(np.asarray(img, np.float32)[..., :3].transpose(2, 0, 1))
        return tuple(np.stack(a) for a in outs)

    return outputs


def clip_windows(data_dir: Path, n: int, size: int, window: int, seed: int) -> list[np.ndarray]:
    """``n`` seeded ``window``-frame crops (``size``²) of consecutive frames of the training clips."""
    rng = np.random.default_rng(seed)
    clips = [data.video_frames(data_dir / name) for name in data.TRAIN_CLIPS]
    out = []
    for i in range(n):
        frames = clips[i % len(clips)]
        t = int(rng.integers(0, len(frames) - window + 1))
        h, w = frames[0].shape[:2]
        side = min(size, h, w) // 8 * 8
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out.append(np.stack([f[y:y + side, x:x + side] for f in frames[t:t + window]]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vdiff_ofx.train.blend", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="denoise", help="a registered denoiser (manifest name)")
    p.add_argument("--knots", default=",".join(str(k) for k in KNOTS), help="strengths (sigma on 0-255) to fit at")
    p.add_argument("--patches", type=int, default=96, help="single-frame models: training patches")
    p.add_argument("--windows", type=int, default=24, help="temporal models: windows of the training clips")
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    p.add_argument("--photos-dir", default=None, help=data.PHOTOS_HELP)
    p.add_argument("--nature-dir", default=None, help=data.NATURE_DIR_HELP)
    args = p.parse_args(argv)
    spec = get_model(args.model)
    if not spec.strength or not spec.strength.input or spec.scale != 1:
        raise SystemExit(f"{args.model}: needs a model at scale 1 with a strength input")
    backend = Backend(providers=["cpu"], threads=args.threads)
    data_dir = data.find_data_dir(args.data_dir)
    knots = tuple(float(k) for k in args.knots.split(","))
    if spec.temporal_window > 1:
        windows = clip_windows(data_dir, args.windows, args.patch, spec.temporal_window, args.seed)
        rows = fit_shares(temporal_outputs(spec, windows, args.seed, backend), knots)
        what = f"{len(windows)} {spec.temporal_window}-frame windows of {data.TRAIN_CLIPS}, white noise"
    else:
        raw = dataclasses.replace(spec, strength=dataclasses.replace(spec.strength, blend=()))
        sources = data.training_sources(data_dir, args.seed, photos_root=data.find_photos_root(args.photos_dir),
                                        nature_root=data.nature_dir(args.nature_dir))
        clean = data.PatchSampler(sources, SOURCE_WEIGHTS, args.patch, args.seed).batch(args.patches)
        clean = np.ascontiguousarray(clean, dtype=np.float32)
        rows = fit_shares(single_frame_outputs(ModelSession(raw, backend), clean, args.seed), knots)
        what = f"{len(clean)} training patches, the training noise mix"
    print(f"{'sigma':>5} {'share':>6} {'none':>7} {'all':>8} {'blend':>7}  (mean PSNR dB on {what}, {args.patch}², "
          f"keeping none, all or the share of the network's change)")
    for r in rows:
        print(f"{r['sigma']:5g} {r['share']:6.3f} {r['input']:7.2f} {r['network']:8.2f} {r['blend']:7.2f}")
    keep = next((i + 1 for i, r in enumerate(rows) if round(r["share"], 3) >= 1.0), len(rows))  # 1 holds beyond
    pairs = ", ".join(f"[{r['sigma']:g}, {r['share']:.3f}]" for r in rows[:keep])
    print(f"manifest ({args.model}): strength: {{..., blend: [{pairs}]}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
