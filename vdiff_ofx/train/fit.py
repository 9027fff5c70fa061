"""Shared training loop for the strength-less models (deblock, upscale2x): pairs in, trained net out.

Same schedule and determinism rules as the denoiser (denoise.seed_everything / denoise.lr_at), with a
Charbonnier loss (a smooth L1: trains restoration nets faster than MSE and keeps the PSNR we report).
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from vdiff_ofx.train.denoise import lr_at, seed_everything  # noqa: F401  (re-exported)
from vdiff_ofx.train.quality import Y_WEIGHTS  # the luma the super-resolution figures measure


def keyed_float(kinds: tuple[str, ...], flag: str) -> Callable[[str], tuple[str, float]]:
    """An argparse `type` for `flag` entries KIND=F (KIND one of `kinds`), so a bad key fails at parse time."""

    def parse(item: str) -> tuple[str, float]:
        kind, _, f = item.partition("=")
        try:
            if kind in kinds:
                return kind, float(f)
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(f"{flag} {item!r}: expected KIND=F with KIND one of {', '.join(kinds)}")

    return parse


def charbonnier(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((a - b) ** 2 + eps * eps).mean()


def luma_charbonnier(weight: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(1 - weight) x Charbonnier on RGB + weight x Charbonnier on luma. Why: the eye (and the SR convention)
    weighs luma detail; spending capacity there buys luma PSNR, while the RGB term keeps chroma in check."""
    k = torch.tensor(Y_WEIGHTS).view(1, 3, 1, 1) / 255.0

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        rgb = charbonnier(a, b) if weight < 1 else a.new_zeros(())
        return (1 - weight) * rgb + weight * charbonnier((a * k).sum(1), (b * k).sum(1))

    return loss


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor | tuple[torch.Tensor, ...],
               target: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = charbonnier) -> float:
    """One optimisation step (``x`` may be a tuple of the net's inputs); returns the batch MSE (for the log's RMSE)."""
    out = net(*x) if isinstance(x, tuple) else net(x)
    loss = loss_fn(out, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return float(((out.detach() - target) ** 2).mean())


def fit(net: torch.nn.Module, batches: Callable[[], tuple[np.ndarray | tuple[np.ndarray, ...], np.ndarray]], steps: int,
        lr: float, log_every: int = 100, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = charbonnier,
        fresh_lr: float = 1.0) -> torch.nn.Module:
    """Adam, 3% warm-up then cosine to 1% of `lr`, grad-clip 1.0. `batches()` gives (input, target) float32 NCHW,
    the input a tuple where the net takes several. ``fresh_lr`` multiplies the rate of the modules named in
    ``net.fresh_modules``: a branch added to a trained net starts at zero and must catch up with it."""
    fresh = tuple(getattr(net, "fresh_modules", ()))
    named = list(net.named_parameters())
    groups = [{"params": [p for n, p in named if not (fresh and n.startswith(fresh))], "scale": 1.0},
              {"params": [p for n, p in named if fresh and n.startswith(fresh)], "scale": fresh_lr}]
    opt = torch.optim.Adam([g for g in groups if g["params"]], lr=lr)
    t0, acc = time.time(), 0.0
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr) * g["scale"]
        x, y = batches()
        x = tuple(torch.from_numpy(a) for a in x) if isinstance(x, tuple) else torch.from_numpy(x)
        acc += train_step(net, opt, x, torch.from_numpy(y), loss_fn)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            n = (step % log_every) + 1
            el = time.time() - t0
            print(f"step {step + 1}/{steps} rmse {math.sqrt(acc / n) * 255:.2f}/255 lr {opt.param_groups[0]['lr']:.2e} "
                  f"{el:.0f}s eta {el / (step + 1) * (steps - step - 1):.0f}s", flush=True)
            acc = 0.0
    return net.eval()
