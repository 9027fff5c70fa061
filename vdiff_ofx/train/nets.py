"""Denoiser architectures.

Why this shape: FFDNet-style -- pixel-unshuffle to 1/r resolution (cheap convs, large receptive
field), a noise-level map concatenated as an extra channel (a smooth strength knob), and
pixel-shuffle back. Like FFDNet it predicts the clean image, not the noise: after unshuffling, the
noise is a white 3*r*r-dim signal per position that a narrow body must carry through every layer,
while the clean r x r block is compressible (measured: noise-residual training stalled at the
identity, direct prediction trained at once). Residual blocks keep the stack trainable without BN.
Defaults (r=2, 32 ch, 4 blocks = 10 convs) were picked by 1080p speed on 2 CPU cores (>= 1 fps
with margin) and by which of the equal-cost r=2/32ch and r=4/64ch learned faster in short runs.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class ResBlock(nn.Module):
    """x + conv(relu(conv(x)))."""

    def __init__(self, width: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.act(self.a(x)))


def add_context(net: nn.Module, width: int, blocks: int, context: int) -> None:
    """Give `net` (with a `body` of residual blocks) the optional 1/4-resolution context branch (see FFDNetLite).

    Its last layer starts at zero and its modules are listed in `net.fresh_modules`, so a trained net fine-tuned
    with the branch (`--init`) starts from exactly its own output."""
    net.context_at = blocks // 2 if context else -1
    net.fresh_modules = ("ctx_down.", "ctx.", "ctx_up.") if context else ()
    if context:
        net.ctx_down = nn.Conv2d(width, width, 4, stride=4)
        net.ctx = nn.Sequential(*[ResBlock(width) for _ in range(context)])
        net.ctx_up = nn.ConvTranspose2d(width, width, 4, stride=4)
        nn.init.zeros_(net.ctx_up.weight)
        nn.init.zeros_(net.ctx_up.bias)


def context_note(blocks: int, down: int, context: int) -> str:
    """The recipe's line for the branch add_context builds ("" without one)."""
    if not context:
        return ""
    return (f"\n  Context branch after block {blocks // 2}: strided 4x4 conv to 1/{4 * down} resolution → {context} "
            "residual blocks → 4x4 transposed conv (zero-initialised), added to the body features.")


def run_body(net: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """`net.body` on `h`, with the context branch (if any) added half-way through."""
    b = h
    for i, block in enumerate(net.body):
        if i == net.context_at:
            b = b + net.ctx_up(net.ctx(net.ctx_down(b)))
        b = block(b)
    return b


class FFDNetLite(nn.Module):
    """x, sigma (N x 1 x 1 x 1, sigma/255) -> denoised x. H, W must be multiples of `down` (`4 * down` with context).

    head conv -> `blocks` residual blocks (+ long skip) -> tail conv: 2 + 2*blocks 3x3 convs.
    `context` > 0 adds a branch at 1/4 of the body's resolution (strided 4x4 conv, `context` residual
    blocks, 4x4 transposed conv), added half-way through the body. Why: the flat body sees 58 px, too
    little for large smooth areas, where CBM3D's block matching still wins; the branch's last layer starts
    at zero, so a trained flat net fine-tuned with it (`--init`) starts from exactly its own output.
    """

    def __init__(self, down: int = 2, width: int = 32, blocks: int = 4, clamp: bool = False, context: int = 0):
        super().__init__()
        self.down, self.clamp = down, clamp
        c = 3 * down * down
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(down), nn.PixelShuffle(down)
        self.head = nn.Conv2d(c + 1, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, c, 3, padding=1)
        add_context(self, width, blocks, context)

    @property
    def size_multiple(self) -> int:
        return self.down * (4 if self.context_at >= 0 else 1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        y = self.unshuffle(x)
        level = sigma.expand(-1, 1, y.shape[2], y.shape[3])
        h = self.head(torch.cat([y, level], dim=1))
        out = self.shuffle(self.tail(run_body(self, h) + h))
        return out.clamp(0.0, 1.0) if self.clamp else out


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class DenoiseUNet(nn.Module):
    """DRUNet-lite: x, sigma -> denoised x, with a 3-level U-Net body on the pixel-unshuffled image.

    Why: at equal FLOPs a U-Net holds ~4x the parameters of a flat stack (each level halves the
    resolution and doubles the width) and sees a ~10x wider context, which is where the flat
    FFDNet-lite stack ran out (models/denoise-hq.md). Levels at 1/2, 1/4, 1/8 of the input with
    width, 2*width, 4*width channels; strided 2x2 convs down, 2x2 transposed convs up, skips added.
    H, W must be multiples of `down` (= 2 * 2**(levels-1)).
    """

    def __init__(self, width: int = 32, blocks: int = 2, levels: int = 3, clamp: bool = False):
        super().__init__()
        self.levels, self.clamp = levels, clamp
        self.down = self.size_multiple = 2 * 2 ** (levels - 1)
        widths = [width * 2**i for i in range(levels)]
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        self.head = nn.Conv2d(13, width, 3, padding=1)
        stack = lambda w: nn.Sequential(*[ResBlock(w) for _ in range(blocks)])  # noqa: E731
        self.enc = nn.ModuleList(stack(w) for w in widths[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in zip(widths, widths[1:]))
        self.bottom = stack(widths[-1])
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:]))
        self.dec = nn.ModuleList(stack(w) for w in widths[:-1])
        self.tail = nn.Conv2d(width, 12, 3, padding=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        y = self.unshuffle(x)
        level = sigma.expand(-1, 1, y.shape[2], y.shape[3])
        h = self.head(torch.cat([y, level], dim=1))
        skips = []
        for enc, down in zip(self.enc, self.downs):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.bottom(h)
        for i in reversed(range(self.levels - 1)):
            h = self.dec[i](self.ups[i](h) + skips[i])
        out = self.shuffle(self.tail(h))
        return out.clamp(0.0, 1.0) if self.clamp else out
