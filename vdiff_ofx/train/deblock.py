"""CLI: train the `deblock` model (compression artefacts + banding), export it, write recipe + figures.

    python -m vdiff_ofx.train.deblock --out models/deblock.onnx

Degradations come from the real encoders (vdiff_ofx.train.compress): cv2 JPEG q10-60, libx264 and
libx265 at CRF 30-45 on short panning sequences, 5-7 bit banding of smooth content, some with mild
noise added before encoding. The pool is built once from a fixed seed, then patches are cropped
from it. No strength input (task deblock).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vdiff_ofx.train.export import init_from, init_note, ship

from vdiff_ofx.train import compress, data, quality
from vdiff_ofx.train.fit import fit, keyed_float, seed_everything
from vdiff_ofx.train.nets import FFDNetLite, context_note
from vdiff_ofx.train.restore_nets import (
    DeblockNet,
    FixedLevel,
    RangeSmooth,
    export_onnx,
    grow,
    param_count,
    parity_check,
)

SOURCE_WEIGHTS = {"photos": 0.4, "frames": 0.35, "leaves": 0.25, "wallpapers": 0.5, "nature": 0.5}
NOTES = """

## With `--tta 8` (same weights, 8 flipped/transposed views averaged)

`python benchmarks/bench_models_quality.py --only deblock --tta 8` on v10: JPEG q10/q25/q50 28.99/32.54/34.69 dB (one
view 28.95/32.46/34.59), H.264 crf35/crf42 28.94/25.90 (28.93/25.89), H.265 crf40 28.05 (28.05), band 6bit 52.59
(52.12); mean over conditions 33.10 dB (one view 33.00); clean frames kept at 43.78 dB (43.23). Margins over the best
baseline with 8 views: +0.43/+0.62/+0.51 dB on JPEG, +0.23/+0.09/+0.05 on video, +2.98 on banding. 8x the time.
(v7's figures: `models/deblock-fast.md`.)

## Design notes and history

- v1 (not shipped): r=4 / 64 ch / 4 blocks (350k params), JPEG q uniform, 25% noisy sources up to sigma 6, 2400 steps:
  held-out JPEG q10 +0.45 dB over the input, below cv2.bilateralFilter (+0.72); the r=4 training loss plateaued early.
- A 400-step A/B on the same pool: r=2 / 32 ch learned faster than the equal-FLOPs r=4 / 64 ch (JPEG q10 gain on the
  held-out photos +0.28 vs +0.15 dB), and runs at the denoiser's cost.
- v2 (not shipped): r=2 / 32 ch, JPEG q skewed to the heavy end: beat both baselines on JPEG q10/q25 and the video
  conditions, but lost ~1 dB on `band 6bit` (it added ~1.3/255 RMS to clean-ish smooth frames) and to bilateral at q50.
- v3 (shipped until v7): + near-clean identity pairs, twice the banding pairs, milder JPEG skew (u^1.3), 2400 steps.
- v4 (not shipped): v3 + the nine Debian wallpaper photos as a source group, 6000 steps (16 min): the training loss
  flattened at ~10.8/255 from step 3000 and the held-out figures fell 0.05-0.2 dB (JPEG q50 34.10 vs 34.29, now
  below bilateral's 34.18; band 6bit 46.96 vs 46.77). At 81k parameters capacity, not data or steps, is the limit:
  a wider/deeper quality variant is the next experiment.
- deblock-hq (not shipped): v4's data at 64 ch / 6 blocks (457k params), 2800 steps (37 min): JPEG q10/q25/q50
  28.74/32.26/34.10, H.264 crf35 28.80, band 6bit 47.32 dB -- no better than v3 at 2.5x the cost (0.41 vs ~1.1 fps at
  1080p). Neither steps, data nor capacity moved it; the degradation pool (how closely it matches the held-out
  encoders' artefacts) and the loss are what to look at next.
- Limitation (v3): on `band 6bit` the model only tied the input in PSNR (SSIM 0.984 → 0.990) while a bilateral filter,
  which smooths every small step, scores higher. (The receptive field was suspected first; the v5-v7 notes below
  show it was the data.)
- Banding alone (experiment, not shipped): the same 81k net trained only on the banding pairs (1600, 5-7 bit) reached
  band 6bit 47.18 dB after 600 steps, and 46.94 / 46.85 after 300 steps with Charbonnier / MSE: even without the
  compression pairs competing, it learns almost nothing of what a 5-px bilateral filter gains (+2.8 dB on held-out,
  +1.9 dB on the training pool). So it is not the loss or the mix; the next thing to test is the input (a net that
  sees a low-pass or 1/4-resolution copy, so plateau positions are visible) rather than more steps.
  Tried next (code not kept): a context branch (the head features average-pooled 4x, 32 ch, 2 residual blocks,
  upsampled and added; +45k params), banding pairs only, 600 steps: training pool 46.81 dB (bilateral 46.66, plain
  net 46.58) but held-out band 6bit 46.79 -- it fits the pool's banding and not the held-out one (blurred full-size
  photos quantised to 6 bits; the net is worst on astronaut, where the blur leaves edges). The pool's banding
  pairs, not the net's reach, are what separate it from the held-out condition.
- v5 (not shipped; the `--init` of v7): v3's command after a data fix. The H.264/H.265 pairs had gone RGB ->
  YUV -> RGB through swscale's default path, which darkens by ~1.2/255 (measured: -1.17 on a flat round trip without
  any codec), so v3 learned to brighten: it added +0.23/255 on average to every held-out frame, clean ones included,
  while the engine's own decoding has no such shift. The round trips now use the engine's exact conversion
  (vdiff_ofx.io.colour, BT.709 limited range), so the pairs carry only what x264/x265 do (+0.15 to +0.6/255 on Y,
  rising with CRF, which the net may learn to undo). Same held-out JPEG and banding inputs as before, video inputs
  re-made the exact way: compression conditions 29.71 dB (v3 29.68), band 6bit 46.40; mean shift on clean frames
  -0.03 to -0.12/255.
- What the banding figure measured: on the banded held-out frames v5 added error where the sigma-4-blurred reference
  still has texture (MSE 1.8-2.0 vs the input's 1.36, in 0-255 units), and it changed an already smooth *clean* frame
  by MSE 0.7-0.9 -- it sharpened blurred content as if it were compressed. The pool's banded content had all been
  blurred with sigma 3-10, so textured banding and clean smooth frames were both missing. New pool options
  (`--band-blur`, `--p-band-ramp`, `--p-light-smooth`, `--pair-scale`): banded content blurred with sigma 1-8, 30%
  ramps, 1.5x the banding pairs, 30% of the near-clean pairs blurred (target = input).
- v6 (not shipped): v3's net trained from scratch on that pool: band 6bit 47.69 dB, a smooth clean frame changed by
  MSE 0.07-0.13 (v5 0.7-0.9), but JPEG q10 28.38 -- below cv2.bilateralFilter (28.56): the 81k net trades one for the other.
- **v7 (`deblock-fast`)**: v5 fine-tuned 2400 steps at lr 5e-4 on the new pool (10.4 min): JPEG q10/q25/q50 28.82/32.41/34.31
  (v3 28.76/32.35/34.29), H.264 crf35/crf42 28.88/25.89, H.265 crf40 28.09, compression mean 29.73 (v5 29.71), band 6bit
  47.10 (v3 46.77, v5 46.40): above the input now, still 2.5 dB below the bilateral filter.
- deblock-hq (not shipped): v5 deepened to 8 blocks (`--blocks 8 --grow 4`: the new blocks start as identities, so it
  starts from v5's output), 2400 steps at lr 5e-4 on the new pool (19 min): JPEG q10/q25/q50 28.95/32.43/34.24, H.264
  28.89/25.90, H.265 28.09, band 6bit 47.32; compression mean 29.75 -- +0.02 dB over v7 for half the speed (0.50 vs
  0.87 fps at 1080p while other jobs ran), so no wider variant.
- Banding specialists (not shipped): the 81k net on the new pool's banding pairs only, 800 steps: band 6bit 48.8 dB;
  with the near-clean pairs (half of them blurred) added, 3000 steps: 47.7. "Leave smooth 8-bit content alone" and
  "smooth 6-bit steps" pull against each other, while the held-out reference is itself a sigma-4 blur, so a mild blur
  (the bilateral filter's 5 px) costs almost nothing there. Neither beat the bilateral filter's 49.61.
- Relative loss (not shipped, code removed): each pair's Charbonnier error divided by its input's error, so banding
  and near-clean pairs weigh as much as JPEG q10 pairs; v3's pool, 2400 steps: band 6bit 47.03 dB (v3 46.77) but
  JPEG q10/q25/q50 28.06/31.67/34.06 (v3 28.76/32.35/34.29) and every video condition lower -- rejected.
- Steep smooth shading (not shipped, code removed): on the held-out banding, v8a's error sat in the 1-4 code
  values/px slopes of bbb's frames, so a pool option added banded 2D low-frequency waves sloping 0.2-4 codes/px (30%
  or 50% of the banding pairs). From v7 with the guide inputs, 2400 steps at lr 1e-3: band 6bit 47.89 / 47.85 dB (v8a,
  same run without them: 48.75). The error map showed why: the error is at the extrema of blurred texture (grass,
  flowers), where the 6-bit plateaus of the peaks came out ~2 codes low, not on the slopes.
- **v8**: the guide inputs (`--guide`, `restore_nets.RangeSmooth`): S_t(x) - x for three fixed 3x3
  edge-stopping smoothers with range thresholds of 2, 6 and 16 code values. Why: whether neighbours differ by 1 code
  (clean 8-bit), 4 codes (6-bit steps) or far more (texture) is what says "smooth here", and the net saw those tiny
  differences poorly: no pool, loss, context branch or capacity change got it near a 5-px bilateral filter (the
  notes above). The 81k net gets them as 9 more input channels through a zero-initialised conv (+10k params).
  - v8a: v7 + guide, v7's pool, 2400 steps at lr 1e-3: band 6bit 48.75 dB (v7 47.10), every compression condition
    +0.00-0.07 (lr 5e-4: band 48.47).
  - v8: v8a continued 2400 steps at lr 5e-4 on a seed-1 pool with banding pairs x3: band 6bit **49.92** (bilateral
    49.61), JPEG q10/q25/q50 28.92/32.48/34.41, H.264 crf35/crf42 28.89/25.89, H.265 crf40 28.08; compression mean
    29.78 (v7 29.73); with `--tta 8` band 50.40, mean over conditions 32.77. The same continuation with banding x1.5:
    band 49.44, compression the same.
  - A third stage (seed 2, banding x3 / x4.5) went on to band 50.02 / 50.17 but lost 0.03-0.07 dB on JPEG q25/q50
    and H.265, so v8 stops here.
  - Cost: the smoothers are ~300 element-wise ops per pixel: 1080p 1.10 vs 1.85 fps for v7 on an idle CPU
    (random frames, onnxruntime 2 threads, same process). v7 stays as `deblock-fast`.
- **v9**: every held-out condition is degraded, so none showed that v7 and v8 also smooth *clean* texture:
  the clean held-out frames came out at 38.36 / 38.44 dB PSNR against themselves (RMS ~3 code values; fine grass
  and flowers flattened), now measured as `quality.untouched`. v8 continued 2400 steps at lr 5e-4 on a seed-2 pool
  with the near-clean pairs x4 (2400: half untouched, half JPEG q85-95): untouched **40.58 dB**, band 6bit 50.19,
  JPEG q10/q25/q50 28.88/32.33/34.29 (v8 28.92/32.48/34.41), H.264 28.86/25.88, H.265 28.05 (v8 28.89/25.89/28.08).
  With the near-clean pairs x8 (4800): untouched 42.75, band 50.56, but JPEG 28.81/32.23/34.25 and H.265 28.02, only
  +0.07 / +0.02 dB over the baselines there, so x4 is the compromise shipped.
- Twice the video pairs (not shipped): v9 continued 2400 steps on a seed-3 pool with the H.264 pairs x2 and H.265
  x2.5 (lr 5e-4 / 3e-4): H.264 crf35/crf42 28.86/25.89, H.265 28.06 (v9 28.86/25.88/28.05), JPEG q25/q50 -0.03/-0.07,
  band 6bit 50.06 / 50.01. More codec data does not widen the video margins of this 91k net.
- **v10 (this file)**: natural photos. The held-out error sat in fine natural texture (chelsea's fur, the coffee
  photo's surfaces), which the training sources held little of; v4's nine plasma wallpapers (mostly wide landscapes) had
  not helped. `--nature-dir` adds data.NATURE_SETS as a group of a third of the clean patches: Debian's
  mate-backgrounds nature photos (12) and the Ubuntu community photos of lomiri-wallpapers-16.04 (13), area-downscaled
  to a 960-px long side.
  - v10a: v9 continued 2400 steps at lr 5e-4 on a seed-3 pool with the photos: JPEG q10/q25/q50 28.91/32.46/34.61,
    H.264 crf35/crf42 28.92/25.89, H.265 crf40 28.05, band 6bit 51.89, untouched 42.78 dB.
  - The same run without the photos (control): 28.91/32.27/34.21, 28.84/25.88/28.03, band 50.45, untouched 41.55. So
    the photos, not the extra steps, bought +0.19 / +0.40 dB on JPEG q25 / q50, +0.08 on H.264 crf35, +1.4 dB on
    banding and +1.2 dB on clean frames.
  - v10: v10a continued on a seed-4 pool, same options: 28.95/32.46/34.59, 28.93/25.89/28.05, band **52.12**,
    untouched **43.23** (v9 40.58).
  - Left: the video margins stay thin (+0.22 / +0.08 / +0.05 dB over the best baseline on H.264 crf35 / crf42 and H.265
    crf40), where JPEG's are +0.39-0.54. x264/x265's in-loop deblocking already removes what a single frame shows; the
    next step there is temporal (a few decoded neighbours in, as `denoise-temporal` does), not more single-frame data.
- Temporal deblocking (pilot, not shipped; code not kept): `denoise-temporal`'s network (360k params, 5 flow-aligned
  frames in) fine-tuned on real codec windows: 8-frame windows from its sequence sampler (96², real clips and
  synthetic motion), each encoded with x264 (60%) or x265 at CRF 30-45 and the training presets, 10% left untouched,
  a 5-frame sub-window cropped to 80² on the 8-px grid; the aligner's and the level input's sigma fixed at 8. Scored on
  16 frames of the held-out clip at 480x272 (frames 2-13), H.264 crf35 / crf42 / H.265 crf40: input 28.16 / 25.27 /
  26.83 dB, v10 28.32 / 25.40 / 26.96; `denoise-temporal` as shipped (sigma 8) 28.23 / 25.36 / 26.91, blended with
  `deblock` 28.29 / 25.41 / 26.99; fine-tuned 1000 steps at lr 2e-4: alone 28.24 / 25.45 / 26.97, blended (share
  0.5) 28.36 / 25.44 / 27.02; 2000 steps at lr 5e-4 on 3000 windows: alone 28.24 / 25.46 / 27.00, blended 28.36 /
  25.45 / 27.03; real-clip windows only: collapsed to 24.5 dB. So +0.04-0.07 dB over v10 for ~4x its cost: the
  decoded neighbours carry the same quantisation loss (P/B frames are predicted from them), which leaves little to
  average. The video margins stay what a single frame gives.
- Temporal deblocking, second try (not shipped; code not kept): the shipped v10 net frozen, plus a 357k-parameter
  early-fusion branch (5 decoded frames and v10's output in, a zero-initialised last layer, so training starts at v10's
  output; 448k in all), on a seeded pool of 2000 12-frame 128² windows (35 % bikes/carphone, 65 % synthetic motion),
  each encoded as one real GOP (I then P/B frames, lookahead on) with x264 veryfast/medium or x265 ultrafast/veryfast
  (40 %) at CRF 30-45 (8 % at 18-27, 15 % with mild noise first); 9000 steps at lr 1e-3, 1 thread, 32 min. Held out,
  PSNR dB, bbb frames 30 and 90 at full size (this file's setup; H.264 crf35 / crf42, H.265 crf35 / crf40): input
  31.36 / 27.92 / 32.40 / 30.11, best bilateral 31.36 / 27.94 / 32.44 / 30.18, v10 31.56 / 28.05 / 32.56 / 30.25,
  temporal 31.58 / 28.07 / 32.56 / 30.25 (+0.01 mean). 16 frames of bbb encoded as one clip (640x360) and the synthetic
  held-out sequence: within +0.01 dB of v10 in every condition, flicker and warp error unchanged; with flow alignment
  (2000 more steps) the same to 0.01 dB. 0.30 vs 0.47 fps at 1080p. Why: averaging 5 decoded frames on static pixels
  gains only +0.03-0.3 dB over the middle frame, and even with motion from the clean frames (the 31 % of bbb's pixels
  that track exactly) 5 aligned decoded frames gain only +0.3-0.5 dB: at these CRFs P/B blocks are copied from their
  references, so the error travels with them, and v10 already takes much of what is left. On its own training windows
  the branch gained +0.002 dB. Temporal context does not widen the video margins; codec side information (QP, frame
  type), which the engine does not read today, is what is left to try.
- Codec side information (not shipped; experiment code not kept): H.264's macroblock QP, read from the decoder's
  `export_side_data=venc_params` table (what `vdiff_ofx/io/codec_qp.py` now reads for `--model auto`), fed to v10 as
  a 2-channel map (QP and a known-flag) at the net's half resolution. From v10, 2000 steps at lr 3e-4 on a seeded pool
  of 8000 H.264 128² pairs (x264 veryfast/medium, CRF 30-45, the I-frame and one inter frame of 6-frame panning
  sequences), one thread each, same pool and batches for all arms: a control without the map; the map into a
  zero-initialised conv added to the head (fresh branch at 3x and 10x the rate); the map also scaling each residual
  block's update (FiLM). Held out, x264 medium, PSNR dB (the five held-out images at CRF 30 / 35 / 42 / 45; 16 frames
  of the held-out clip at 640x360 as one clip, CRF 35 / 42): input 31.13 / 28.69 / 25.75 / 24.67, 28.95 / 25.85;
  v10 31.40 / 28.93 / 25.89 / 24.79, 29.11 / 25.97; control 31.40 / 29.03 / 25.99 / 24.86, 29.12 / 26.04; head
  31.46 / 29.02 / 25.98 / 24.88, 29.10 / 26.03; FiLM 31.46 / 29.03 / 25.98 / 24.88, 29.10 / 26.03 (head at 10x within
  0.01 of head). So the QP map is worth at most +0.06 dB (CRF 30) and nothing at CRF 35-45: the picture already tells
  the net how coarse the quantiser was. The H.264-only control's own +0.07-0.10 over v10 is specialisation: it lost
  0.16-0.39 dB on JPEG, 6.5 dB on banding and 5 dB on clean frames. What the QP does buy is the decision: a
  picture-based blockiness reads 0.96-1.06 on x264 files from CRF 18 to 42, so `--model auto` never chose `deblock`
  for them; it now reads the QP (README, `benchmarks/bench_auto.py`).
- A wider deblocker from `denoise-hq`'s weights (not shipped): `--from-denoiser models/denoise-hq.onnx --width 64
  --blocks 6 --context 2 --level 8` (736k parameters, `restore_nets.FixedLevel`), 4000 steps at lr 3e-4, seed 5,
  2 threads, v10's pool options and photos (20.5 min). Held out: JPEG q10/q25/q50 28.82 / 32.53 / 34.63 (v10 28.95 /
  32.46 / 34.59), H.264 crf35/crf42 28.97 / 25.92 (28.93 / 25.89), H.265 crf40 28.12 (28.05), band 6bit 50.79
  (52.12), untouched 39.35 (43.23), 0.59 fps at 1080p (v10 ~1.0). So +0.03-0.07 dB on the video conditions for 1.7x
  the cost, and worse on banding and clean frames: a denoiser's prior does not widen the video margins either.
"""


PAIR_KINDS = ("jpeg", "h264", "h265", "band", "light")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vdiff_ofx.train.deblock", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("models/deblock.onnx"), help="ONNX output; the recipe goes to <out>.md")
    p.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    p.add_argument("--photos-dir", default=None, help=data.PHOTOS_HELP)
    p.add_argument("--nature-dir", default=None, help=data.NATURE_DIR_HELP)
    p.add_argument("--steps", type=int, default=2400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=80)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--blocks", type=int, default=4, help="residual blocks (2 convs each)")
    p.add_argument("--down", type=int, default=2, help="pixel-unshuffle factor (= size_multiple without --context)")
    p.add_argument("--context", type=int, default=0,
                   help="residual blocks of a 1/4-res context branch (0: none; size_multiple becomes 4 x --down)")
    p.add_argument("--guide", action="store_true",
                   help=f"also feed the net fixed 3x3 edge-stopping smoothers ({RangeSmooth().describe()})")
    p.add_argument("--pool-scale", type=float, default=1.0, help="multiply the pool sizes (smoke tests use a tiny pool)")
    p.add_argument("--pair-scale", nargs="*", default=[], metavar="KIND=F", type=keyed_float(PAIR_KINDS, "--pair-scale"),
                   help="multiply one kind's pair count (jpeg, h264, h265, band, light), e.g. band=1.5 jpeg=0")
    p.add_argument("--band-blur", type=float, nargs=2, default=list(compress.PoolConfig.band_blur), metavar=("LO", "HI"),
                   help="blur sigma range of the natural content that is banded")
    p.add_argument("--p-band-ramp", type=float, default=compress.PoolConfig.p_band_ramp,
                   help="share of banding pairs that are synthetic colour ramps")
    p.add_argument("--p-light-smooth", type=float, default=compress.PoolConfig.p_light_smooth,
                   help="share of near-clean pairs that are blurred content (teaches: do not sharpen smooth clean frames)")
    p.add_argument("--init", type=Path, default=None,
                   help="fine-tune: start from this ONNX file's weights (same --width/--blocks)")
    p.add_argument("--from-denoiser", type=Path, default=None, metavar="ONNX",
                   help="start from a denoiser's weights (FFDNet-lite: same --width/--blocks/--context, e.g. "
                        "models/denoise-hq.onnx with --width 64 --blocks 6 --context 2), run at the fixed --level")
    p.add_argument("--level", type=float, default=8.0,
                   help="with --from-denoiser: the noise level (sigma on 0-255) its strength input is held at")
    p.add_argument("--grow", type=int, default=0,
                   help="with --init: the file has this many fewer blocks; the new last blocks start as identities")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--no-eval", action="store_true", help="skip held-out evaluation and the .md figures")
    return p.parse_args(argv)


def pool_config(args: argparse.Namespace) -> compress.PoolConfig:
    """The pool recipe: defaults x 2 x --pool-scale, then the --pair-scale factors and the banding options."""
    c = compress.PoolConfig()
    factors = dict(args.pair_scale)
    for k in PAIR_KINDS:
        n = max(4, int(getattr(c, "n_" + k) * 2.0 * args.pool_scale))
        setattr(c, "n_" + k, int(n * factors.get(k, 1.0)))
    c.band_blur, c.p_band_ramp, c.p_light_smooth = tuple(args.band_blur), args.p_band_ramp, args.p_light_smooth
    return c


def make_pool(data_dir: Path, seed: int, cfg: compress.PoolConfig, sources=None):
    """Clean sources -> degraded/clean pool (seeded)."""
    sources = sources or data.training_sources(data_dir, seed)
    small = data.PatchSampler(sources, SOURCE_WEIGHTS, cfg.size, seed + 10)
    big = data.PatchSampler(sources, SOURCE_WEIGHTS, 2 * cfg.size + 16, seed + 11)

    def sample_clean(side: int) -> np.ndarray:
        s = small if side == cfg.size else big
        assert side == s.patch
        return s.batch(1)[0].transpose(1, 2, 0)

    return compress.build_pool(sample_clean, cfg, seed + 12)


def train(args: argparse.Namespace, data_dir: Path) -> tuple[DeblockNet, dict]:
    seed_everything(args.seed, args.threads)
    t = time.time()
    cfg = pool_config(args)
    sources = data.training_sources(data_dir, args.seed, photos_root=data.find_photos_root(args.photos_dir),
                                    nature_root=data.nature_dir(args.nature_dir))
    deg, cln, kind = make_pool(data_dir, args.seed, cfg, sources)
    pool_s = time.time() - t
    counts = {n: int((kind == k).sum()) for k, n in enumerate(("jpeg", "h264", "h265", "band", "light"))}
    print(f"pool {deg.shape} {counts} in {pool_s:.0f}s", flush=True)
    sampler = compress.PairSampler(deg, cln, args.patch, args.seed + 3)
    if args.from_denoiser:
        net = FixedLevel(FFDNetLite(args.down, args.width, args.blocks, context=args.context), args.level / 255.0)
        init_from(net.inner, args.from_denoiser)
        init_from(net, args.init)
    else:
        net = DeblockNet(args.down, args.width, args.blocks, context=args.context, guide=args.guide)
        if args.grow:
            grow(net, args.grow)
        init_from(net, args.init)
    print(f"params={param_count(net)}", flush=True)
    net = fit(net, lambda: sampler.batch(args.batch), args.steps, args.lr, args.log_every)
    return net, {"pool_s": pool_s, "counts": counts, "cfg": cfg}


METHODS = ("degraded input", "cv2.bilateralFilter", "fastNlMeans (light)", "vdiff deblock")


def _mean_codec(results, method: str) -> float:
    return float(np.mean([r.psnr for r in results if r.method == method and not r.condition.startswith("band")]))


def guide_note(guide: bool) -> str:
    """The recipe's line for `--guide` ("" without it)."""
    if not guide:
        return ""
    rs = RangeSmooth()
    return (f"\n  Guide inputs: fixed 3x3 edge-stopping smoothers (RangeSmooth: {rs.describe()}) give S_t(x) - x as "
            f"{rs.channels} more channels, pixel-unshuffled into a zero-initialised conv added to the head.")


def arch_note(args: argparse.Namespace) -> str:
    """The recipe's architecture line: the residual deblocker, or a denoiser held at a fixed level."""
    if args.from_denoiser:
        return (f"FFDNet-lite (`nets.FFDNetLite`: PixelUnshuffle({args.down}), conv3x3 ({args.width} ch) over the picture and "
                f"a noise-level map, {args.blocks} residual blocks + long skip, conv3x3, PixelShuffle({args.down}); predicts "
                f"the picture) with its level input held at {args.level:g}/255 (`restore_nets.FixedLevel`), started "
                f"from the weights of `{args.from_denoiser}`, clamped to 0..1.{context_note(args.blocks, args.down, args.context)}")
    return (f"PixelUnshuffle({args.down}) → conv3x3 ({args.width} ch) → {args.blocks} residual blocks (conv3x3-ReLU-conv3x3)\n"
            f"  + long skip → conv3x3 → PixelShuffle({args.down}), **added to the input** (residual; zero-initialised tail, so "
            f"training\n  starts at the identity), clamped to 0..1. {2 + 2 * args.blocks} convs; receptive field "
            f"{(2 * (2 + 2 * args.blocks) + 1) * args.down} px.{context_note(args.blocks, args.down, args.context)}"
            f"{guide_note(args.guide)}")


def write_recipe(args, net, sha, train_s, parity, info, results, fps_1080) -> Path:
    md = args.out.with_suffix(".md")
    cmd = "python -m vdiff_ofx.train.deblock " + " ".join(sys.argv[1:])
    cfg = info["cfg"]
    text = f"""# {args.out.stem} — recipe and figures

Generated by `{cmd}` (torch {torch.__version__}, Python {platform.python_version()}, {args.threads} CPU thread(s)).

{init_note(args.init)}- Task: remove compression artefacts (blocking, ringing, mosquito noise, chroma smear) from heavily compressed
  delivery files; also trained on banding (see the limitation below). No strength input.
- Architecture: {arch_note(args)}
- Parameters: {param_count(net)}; size_multiple {net.size_multiple}; ONNX opset 17, dynamic N/H/W; onnxruntime vs torch max abs diff {parity:.2e}.
- sha256: `{sha}`
- Training: {args.steps} steps, batch {args.batch} × {args.patch}² crops, Adam lr {args.lr:g} (3% warm-up, cosine to 1%),
  Charbonnier loss, grad-clip 1.0, seed {args.seed}, deterministic kernels, {args.threads} thread(s).
  Pool build {info['pool_s']:.0f} s + training = {train_s / 60:.1f} min wall on a shared 2-core CPU.
- Data (no downloads): clean patches from data.training_sources (scikit-image {", ".join(data.TRAIN_SKIMAGE)}; every 8th
  frame of {", ".join(data.TRAIN_CLIPS)}; 120 seeded dead-leaves); {data.photos_note(data.find_photos_root(args.photos_dir))}
  {data.nature_note(data.nature_dir(args.nature_dir))}
  Mix {SOURCE_WEIGHTS} (absent groups dropped), random crop/rescale/rot/flip.
- Degradation pool (built once, seeded, uint8 in memory; {cfg.size}² pairs {info['counts']}):
  - JPEG: `cv2.imencode` quality {compress.JPEG_Q[0]} + {compress.JPEG_Q[1] - compress.JPEG_Q[0]}·u^{cfg.q_skew:g} (libjpeg 4:2:0); 10% on blurred (smooth) content.
  - H.264 / H.265: PyAV libx264 (presets {compress.X264_PRESETS}) / libx265 ({compress.X265_PRESETS}), CRF U{{{compress.CRF[0]}..{compress.CRF[1]}}},
    yuv420p, {cfg.seq_len}-frame sequences of a {2 * cfg.size}² crop panning 0-2 px/frame; the I-frame and one inter frame
    are kept (4 tiles each). {cfg.p_smooth_src:.0%} of sequences are smooth content (blurred photos or colour ramps) so
    codec banding is covered.
  - Banding: smooth colour ramps ({cfg.p_band_ramp:.0%}) or content blurred with sigma U({cfg.band_blur[0]:g}, {cfg.band_blur[1]:g}),
    quantised to 5-7 bits (30% then JPEG q30-80).
  - Near-clean: {cfg.n_light} pairs of untouched or JPEG q85-95 patches (target = input's clean source; {cfg.p_light_smooth:.0%} of
    them blurred content, sigma U(1, 4)), so the net learns to leave good content alone (v2 without them added ~1.3/255
    RMS to clean-ish smooth frames).
  - Mild noise: {cfg.p_noise:.0%} of sources get Gaussian noise sigma U(1, {cfg.noise_max:g})/255 *before* encoding; the
    target is always the clean patch.
  - Crops: 75% on the 8-px grid (codec block alignment), else any even offset; same rot90/flip on both sides.
- Held out (never trained on): scikit-image {", ".join(data.HELDOUT_SKIMAGE)}; bigbuckbunny.mp4 frames {data.HELDOUT_CLIP_FRAMES}.
- Reproducibility: same command, versions (torch, numpy, opencv, PyAV/x264/x265) and thread count → same pool, weights, ONNX bytes.
"""
    if results is not None:
        text += f"""
## Held-out figures

Video conditions encode the real demo-clip frames {quality.BBB_CONTEXT} either side of each held-out frame and score the
middle (inter-coded) frame (x264 preset medium, x265 veryfast); stills are single intra frames. `band 6bit`: the reference
is a blurred (sigma 4) copy of the image and the input is that copy quantised to 6 bits. Baselines get their best setting per condition (bilateral grid
{compress.BILATERAL_GRID} as (d, sigmaColor, sigmaSpace); fastNlMeansColored 5/15 h ∈ {compress.NLM_GRID}).
RGB PSNR/SSIM (vdiff_ofx.metrics), mean over the held-out images. ms/MP on the shared 2-core CPU, onnxruntime 2 threads.

{quality.format_table(results)}

Mean over conditions — degraded {quality.summary(results, 'degraded input')[0]:.2f} dB, bilateral {quality.summary(results, 'cv2.bilateralFilter')[0]:.2f} dB,
NLM {quality.summary(results, 'fastNlMeans (light)')[0]:.2f} dB, **vdiff deblock {quality.summary(results, 'vdiff deblock')[0]:.2f} dB**.
Compression conditions only (all but `band 6bit`) — {", ".join(f"{m} {_mean_codec(results, m):.2f} dB" for m in METHODS)}.

Clean held-out frames (8-bit, no degradation) through the model: {info['untouched'][0]:.2f} dB PSNR against themselves
{info['untouched'][1]} (the higher, the less it touches good content).

1080p (1×3×1080×1920) onnxruntime CPU, 2 threads: {fps_1080:.2f} frames/s.

Per-image PSNR of the model: {json.dumps({r.condition: r.per_image for r in results if r.method == 'vdiff deblock'})}

Reproduce the table alone: `python benchmarks/bench_models_quality.py --only deblock`.
"""
    md.write_text(text + NOTES)
    return md


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = data.find_data_dir(args.data_dir)
    t0 = time.time()
    net, info = train(args, data_dir)
    train_s = time.time() - t0
    sha, parity = ship(net, args.out, train_s, export_onnx, parity_check)
    results = fps_1080 = None
    if not args.no_eval:
        model = quality.OnnxImageModel(args.out, net.size_multiple, 2)
        fps_1080 = quality.fps(model, 1080, 1920)
        images, clips = quality.heldout(data_dir)
        results = quality.evaluate_deblock(model, images, clips)
        info["untouched"] = quality.untouched(model, images)
        print(quality.format_table(results), f"\n1080p fps {fps_1080:.2f} untouched {info['untouched']}", flush=True)
    print(f"wrote {write_recipe(args, net, sha, train_s, parity, info, results, fps_1080)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
