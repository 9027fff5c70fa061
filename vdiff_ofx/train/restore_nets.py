"""Nets for the strength-less models (`deblock`, `upscale2x`) and their ONNX export + parity check.

DeblockNet: the denoiser's shape (pixel-unshuffle, residual blocks, pixel-shuffle) without the sigma
input, predicting a *residual* on top of the input. Compression artefacts are small, structured
corrections of a mostly-right image (unlike white noise, see nets.py), so the residual starts the net
at the identity and it only has to learn the fix. Shipped at r=2 / 32 ch / 4 blocks (the denoiser's
cost, 1080p >= 1 fps on 2 idle cores): in a 400-step A/B on the same pool it learned faster than the
equal-FLOPs r=4 / 64 ch (JPEG q10 gain on the held-out photos +0.28 vs +0.15 dB), and a 2400-step r=4
run plateaued early (models/deblock.md).

SR2xNet: ESPCN/FSRCNN-like conv stack at input resolution -> 12 channels -> PixelShuffle(2), added
to an exact cv2-style bicubic 2x upsample that is built in (fixed depthwise conv on the 4 output
phases, edge-replicated borders -- bit-compatible with cv2.resize INTER_CUBIC and exported as a plain
Conv, so onnxruntime parity is exact). The net therefore learns only the detail bicubic misses. With
`detail=True` (DetailGate) it takes a second input saying how much of that detail to restore.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdiff_ofx.train.nets import ResBlock, add_context, param_count, run_body  # noqa: F401  (param_count re-exported)

OPSET = 17


def grow(net: nn.Module, new_blocks: int) -> None:
    """Make the last `new_blocks` residual blocks of `net.body` identities (second conv zeroed), marked fresh.

    Why: `--grow N --init FILE` deepens a trained net; the deeper net starts from exactly the file's output,
    so fine-tuning adds capacity without first relearning what the shallow net knew.
    """
    if getattr(net, "gate", None) is not None:
        raise ValueError("--grow does not take a detail-gated net: the gate's last layer is sized by the block count")
    if not 0 < new_blocks < len(net.body):
        raise ValueError(f"--grow {new_blocks}: must be between 1 and the block count minus 1 ({len(net.body) - 1})")
    first = len(net.body) - new_blocks
    for block in list(net.body)[first:]:
        nn.init.zeros_(block.b.weight)
        nn.init.zeros_(block.b.bias)
    net.fresh_modules = tuple(getattr(net, "fresh_modules", ())) + tuple(f"body.{i}." for i in range(first, len(net.body)))


class RangeSmooth(nn.Module):
    """Fixed 3x3 edge-stopping smoothers (bilateral-style, one per range threshold) minus the input; no weights.

    Why: banding is steps of a few code values between plateaus. Whether a pixel's neighbours differ by
    1/255 (clean 8-bit), 4/255 (6-bit steps) or far more (texture) is what says "smooth here", and a ReLU net
    sees those tiny differences poorly (an 81k net never learnt what a 5-px bilateral filter gains on
    banding, models/deblock.md). Each output channel group is S_t(x) - x: zero on flat areas, the
    correction an edge-stopping filter at threshold t would make elsewhere. Exported as plain ONNX ops.
    """

    def __init__(self, thresholds: tuple[float, ...] = (2 / 255, 6 / 255, 16 / 255), sigma_space: float = 1.0):
        super().__init__()
        self.thresholds, self.sigma_space = tuple(float(t) for t in thresholds), float(sigma_space)
        self.offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        self.space = [float(np.exp(-(dy * dy + dx * dx) / (2 * sigma_space**2))) for dy, dx in self.offsets]

    @property
    def channels(self) -> int:
        return 3 * len(self.thresholds)

    def describe(self) -> str:
        """For recipes and help: "range thresholds 2/6/16 code values, spatial sigma 1"."""
        codes = "/".join(f"{t * 255:g}" for t in self.thresholds)
        return f"range thresholds {codes} code values, spatial sigma {self.sigma_space:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
        nums = [x for _ in self.thresholds]
        dens = [1.0 for _ in self.thresholds]
        for (dy, dx), g in zip(self.offsets, self.space):
            n = xp[:, :, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            d2 = ((n - x) ** 2).mean(dim=1, keepdim=True)
            for k, t in enumerate(self.thresholds):
                wk = torch.exp(d2 * (-0.5 / (t * t))) * g
                nums[k] = nums[k] + wk * n
                dens[k] = dens[k] + wk
        return torch.cat([num / den - x for num, den in zip(nums, dens)], dim=1)


class DeblockNet(nn.Module):
    """x -> x + shuffle(tail(body(head(unshuffle(x)) [+ guide_head(unshuffle(RangeSmooth(x)))]))). H, W multiples of `down`."""

    def __init__(self, down: int = 2, width: int = 32, blocks: int = 4, clamp: bool = False, context: int = 0,
                 guide: bool = False):
        super().__init__()
        self.down, self.scale, self.clamp = down, 1, clamp
        c = 3 * down * down
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(down), nn.PixelShuffle(down)
        self.head = nn.Conv2d(c, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, c, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        add_context(self, width, blocks, context)  # `context` > 0: sees smooth areas (banding) far wider
        self.guide = RangeSmooth() if guide else None
        if guide:  # zero-initialised, so a trained net fine-tuned with it (`--init`) starts from its own output
            self.guide_head = nn.Conv2d(self.guide.channels * down * down, width, 3, padding=1)
            nn.init.zeros_(self.guide_head.weight)
            nn.init.zeros_(self.guide_head.bias)
            self.fresh_modules = tuple(self.fresh_modules) + ("guide_head.",)

    @property
    def size_multiple(self) -> int:
        return self.down * (4 if self.context_at >= 0 else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(self.unshuffle(x))
        if self.guide is not None:
            h = h + self.guide_head(self.unshuffle(self.guide(x)))
        out = x + self.shuffle(self.tail(run_body(self, h) + h))
        return out.clamp(0.0, 1.0) if self.clamp else out


class FixedLevel(nn.Module):
    """A denoiser (x, sigma -> x) run at a fixed noise level: an image-only net to fine-tune for another restoration.

    Why: `denoise-hq` (width 64, 6 blocks, context branch) already knows natural pictures; compression artefacts
    are structured noise, so `deblock-hq` starts from its weights (`--from-denoiser`) at a level near their RMS
    instead of from scratch, which on this CPU never got a wider deblocker past the small one (models/deblock.md).
    """

    def __init__(self, inner: nn.Module, level: float):
        super().__init__()
        self.inner, self.level, self.scale = inner, float(level), 1
        self.fresh_modules = tuple("inner." + m for m in getattr(inner, "fresh_modules", ()))

    @property
    def clamp(self) -> bool:
        return self.inner.clamp

    @clamp.setter
    def clamp(self, value: bool) -> None:
        self.inner.clamp = value

    @property
    def size_multiple(self) -> int:
        return self.inner.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x, x.new_full((x.shape[0], 1, 1, 1), self.level))


def _cubic_taps(t: float, a: float = -0.75) -> list[float]:
    """The 4 Keys-cubic weights (OpenCV's a=-0.75) for fractional offset t, for samples at -1, 0, 1, 2."""
    def k(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        if d < 2:
            return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
        return 0.0
    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def bicubic2x_kernel() -> torch.Tensor:
    """12 x 1 x 5 x 5 depthwise weights: for each RGB channel, its 4 output phases (PixelShuffle order).

    Half-pixel centres: output row 2i samples input row i - 0.25 (taps i-2..i+1, t=0.75) and row 2i+1
    samples i + 0.25 (taps i-1..i+2, t=0.25). Applied to an input edge-padded by 2.
    """
    even = _cubic_taps(0.75) + [0.0]           # window i-2..i+2: taps at i-2..i+1
    odd = [0.0] + _cubic_taps(0.25)            # taps at i-1..i+2
    w = torch.zeros(12, 1, 5, 5, dtype=torch.float64)
    for c in range(3):
        for py, wy in enumerate((even, odd)):
            for px, wx in enumerate((even, odd)):
                w[c * 4 + py * 2 + px, 0] = torch.outer(torch.tensor(wy), torch.tensor(wx))
    return w.float()


class DetailGate(nn.Module):
    """detail t (N x 1 x 1 x 1, 0..1) -> one scale per channel of each residual block's update (1 at start).

    Why: how much detail a 2x upscale should restore depends on how the small picture was made: an aliased
    downscale (plain cubic, line-skipping cameras) keeps its detail, folded, and sharpening it further loses
    to bicubic; an antialiased one (area, MATLAB bicubic, most cameras and scalers) needs it restored. The
    picture alone barely tells which (a CNN classifier on 96-px patches stayed at chance), so it is a knob.
    t = 0 / 0.5 / 1 were trained on cubic / area / MATLAB downscales; between them, hat weights blend the
    neighbouring two. The last layer starts at zero, so a trained net gated with `--init` starts as itself.
    """

    def __init__(self, width: int, blocks: int, hidden: int = 32):
        super().__init__()
        self.width, self.blocks = width, blocks
        self.fc1, self.fc2 = nn.Linear(3, hidden), nn.Linear(hidden, width * blocks)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, detail: torch.Tensor) -> torch.Tensor:
        t = 2.0 * detail.reshape(-1, 1).clamp(0.0, 1.0)
        hats = torch.cat([torch.relu(1.0 - t), torch.relu(1.0 - torch.abs(t - 1.0)), torch.relu(t - 1.0)], dim=1)
        s = 1.0 + torch.tanh(self.fc2(torch.relu(self.fc1(hats))))
        return s.reshape(-1, self.blocks, self.width, 1, 1)


class SR2xNet(nn.Module):
    """x (N x 3 x H x W) -> N x 3 x 2H x 2W = PixelShuffle(2)(net(x) + bicubic_phases(x))."""

    size_multiple = 1

    def __init__(self, width: int = 32, blocks: int = 4, clamp: bool = False, detail: bool = False):
        super().__init__()
        self.down, self.scale, self.clamp = 1, 2, clamp
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, 12, 3, padding=1)
        nn.init.zeros_(self.tail.bias)
        nn.init.normal_(self.tail.weight, std=1e-3)
        self.register_buffer("bicubic", bicubic2x_kernel(), persistent=False)
        self.shuffle = nn.PixelShuffle(2)
        self.gate = DetailGate(width, blocks) if detail else None
        if detail:
            self.fresh_modules = ("gate.",)

    def upsample_phases(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.bicubic, groups=3)

    @property
    def takes_detail(self) -> bool:
        return self.gate is not None

    def features(self, x: torch.Tensor, detail: torch.Tensor | None) -> torch.Tensor:
        h = self.head(x)
        if self.gate is None:
            return self.body(h) + h
        if detail is None:
            raise ValueError("this SR net has a detail gate: pass its detail (N x 1 x 1 x 1, 0..1)")
        scales, b = self.gate(detail), h
        for i, block in enumerate(self.body):
            b = b + block.b(block.act(block.a(b))) * scales[:, i]
        return b + h

    def forward(self, x: torch.Tensor, detail: torch.Tensor | None = None) -> torch.Tensor:
        out = self.shuffle(self.tail(self.features(x, detail)) + self.upsample_phases(x))
        return out.clamp(0.0, 1.0) if self.clamp else out


class SR4xNet(nn.Module):
    """x -> 4x: two detail-gated SR2xNet stages, both told the same detail, trained end to end on 4x downscales.

    Why: a second pass of the 2x net sees the first pass's output, not a downscaled picture, and gains only
    +1.2-1.4 dB over bicubic at 4x (models/upscale4x.md); fine-tuned together, each stage learns its part.
    `--init` a 2x file starts both stages from it.
    """

    size_multiple = 1
    takes_detail = True

    def __init__(self, width: int = 32, blocks: int = 4, clamp: bool = False):
        super().__init__()
        self.down, self.scale, self.clamp = 1, 4, clamp
        self.first, self.second = SR2xNet(width, blocks, detail=True), SR2xNet(width, blocks, detail=True)
        self.fresh_modules = ("first.gate.", "second.gate.")

    def forward(self, x: torch.Tensor, detail: torch.Tensor | None = None) -> torch.Tensor:
        out = self.second(self.first(x, detail), detail)
        return out.clamp(0.0, 1.0) if self.clamp else out


def _extra_inputs(model: nn.Module, n: int, g: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """The inputs after the picture: a `detail` value per batch item for a gated SR net, else none."""
    if not getattr(model, "takes_detail", False):
        return ()
    return (torch.rand((n, 1, 1, 1), generator=g) if g is not None else torch.full((n, 1, 1, 1), 0.5),)


def export_onnx(net: nn.Module, path: str | Path) -> None:
    """Write a strength-less image net (clamped, eval) with input "input" (and "detail" for a gated SR net),
    output "output", dynamic N/H/W."""
    model = copy.deepcopy(net).eval()
    model.clamp = True
    m = model.size_multiple
    dummy = (torch.rand(1, 3, 16 * m, 24 * m),) + _extra_inputs(model, 1)
    names = ["input", "detail"][: len(dummy)]
    axes = {"input": {0: "N", 2: "H", 3: "W"}, "output": {0: "N", 2: "H2", 3: "W2"}, "detail": {0: "N"}}
    with torch.no_grad():
        torch.onnx.export(model, dummy, str(path), input_names=names, output_names=["output"],
                          opset_version=OPSET, dynamic_axes={k: axes[k] for k in names + ["output"]},
                          do_constant_folding=True, dynamo=False)


def parity_check(net: nn.Module, path: str | Path, tol: float = 1e-4) -> float:
    """Max |torch - onnxruntime| over two shapes/batches (also checks the output shape); raises if >= tol."""
    import onnxruntime as ort

    model = copy.deepcopy(net).eval()
    model.clamp = True
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(123)
    worst, m = 0.0, model.size_multiple
    for n, h, w in ((1, 17 * m, 31 * m), (2, 9 * m, 13 * m)):
        inputs = (torch.rand((n, 3, h, w), generator=g),) + _extra_inputs(model, n, g)
        with torch.no_grad():
            ref = model(*inputs).numpy()
        got = sess.run(["output"], dict(zip(["input", "detail"], (t.numpy() for t in inputs))))[0]
        assert got.shape == (n, 3, h * model.scale, w * model.scale), got.shape
        worst = max(worst, float(np.abs(ref - got).max()))
    if worst >= tol:
        raise RuntimeError(f"onnxruntime/torch mismatch {worst:.2e} >= {tol:.0e}")
    return worst
