"""Quantization-aware fine-tuning (`denoise --qat`): train the fp32 weights that `quantize.py` will turn into int8.

Why: the int8 build rounds the inner features of denoise-hq to 256 levels and its weights to 255 per output channel;
trained in fp32 alone, the network never saw that rounding (denoise-hq v8, held-out sigma 25: 32.22 dB int8 vs 32.28
fp32; v9 32.25 vs 32.31; v10, v9 fine-tuned with this: 32.31 vs 32.35). Here the training forward pass rounds exactly
what `quantize.quantize` rounds, with the scales it would choose:

- the weights of every convolution it quantizes: int8 per output channel, symmetric, scale max|w| / 127 (axis 0 for
  Conv, 1 for ConvTranspose), recomputed from the current weights at every step;
- every activation it puts a QuantizeLinear on: uint8 per tensor with its scale and zero point, read from the int8
  graph that `quantize.quantize` makes of the current weights (same calibration crops, same percentile), redone
  every `--qat-recal` steps.

Nothing else is rounded: the pixel convolutions and the long skip that `quantize.fp32_nodes` keeps fp32 see full
precision, as in the int8 graph. Rounding passes gradients straight through (zero outside the clip range), the usual
STE. The result is an ordinary fp32 ONNX file; `python -m vdiff_ofx.train.quantize` makes the int8 file from it.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vdiff_ofx.train.nets import FFDNetLite


class FakeQuant:
    """The int8 graph's rounding: activation (scale, zero point) by ONNX tensor name, and the quantized weights."""

    def __init__(self, act: dict[str, tuple[float, int]], weights: set[str]):
        self.act, self.weights, self.used = act, weights, set()

    @classmethod
    def from_int8(cls, path: str | Path) -> "FakeQuant":
        """Read the QuantizeLinear parameters and the quantized weight names of a `quantize.py` int8 file."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(path)).graph
        inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        act: dict[str, tuple[float, int]] = {}
        for n in graph.node:
            if n.op_type == "QuantizeLinear" and n.input[0] not in inits:
                scale, zp = float(inits[n.input[1]]), int(inits[n.input[2]])
                if inits[n.input[2]].dtype != np.uint8:
                    raise ValueError(f"{path}: {n.input[0]} is not uint8")
                if act.setdefault(n.input[0], (scale, zp)) != (scale, zp):
                    raise ValueError(f"{path}: two scales for {n.input[0]}")
        weights = {n.output[0].removesuffix("_DequantizeLinear_Output") for n in graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4}
        return cls(act, weights)

    @classmethod
    def calibrate(cls, net: FFDNetLite, crops: int = 24, size: int = 128, seed: int = 0) -> "FakeQuant":
        """Export `net`, quantize it as `python -m vdiff_ofx.train.quantize` would, and read the result's rounding."""
        from vdiff_ofx.train.export import export_onnx
        from vdiff_ofx.train.quantize import quantize

        with tempfile.TemporaryDirectory() as tmp:
            fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            export_onnx(net, fp32)
            quantize(fp32, int8, crops, size, seed)
            fq = cls.from_int8(int8)
        fq.check(net)
        return fq

    def a(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Round activation `name` to the int8 graph's uint8 grid (unchanged where that graph keeps it fp32)."""
        if name not in self.act:
            return x
        self.used.add(name)
        scale, zp = self.act[name]
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, 0, 255)

    def conv(self, mod: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, name: str) -> torch.Tensor:
        """`mod(x)` with its weight rounded to int8 per output channel where the int8 graph quantizes it."""
        w = mod.weight
        if name + ".weight" in self.weights:
            self.used.add(name + ".weight")
            axis = 1 if isinstance(mod, nn.ConvTranspose2d) else 0
            dims = tuple(d for d in range(w.dim()) if d != axis)
            scale = (w.detach().abs().amax(dim=dims) / 127).clamp_min(1e-12)
            w = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros_like(scale, dtype=torch.int32), axis,
                                                       -127, 127)
        if isinstance(mod, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, mod.bias, mod.stride, mod.padding, mod.output_padding, mod.groups,
                                      mod.dilation)
        return mod._conv_forward(x, w, mod.bias)

    def check(self, net: FFDNetLite) -> None:
        """Every rounding in the int8 graph must have its place in `forward` (else the training would not match it)."""
        self.used = set()
        with torch.no_grad():
            m = net.size_multiple
            forward(net, torch.zeros(1, 3, 4 * m, 4 * m), torch.zeros(1, 1, 1, 1), self)
        missing = (set(self.act) | self.weights) - self.used
        if missing:
            raise ValueError(f"the int8 graph rounds {sorted(missing)[:4]}, which qat.forward does not know")


def _block(block: nn.Module, x: torch.Tensor, fq: FakeQuant, mod: str, scope: str) -> torch.Tensor:
    """nets.ResBlock with the int8 graph's roundings (ONNX names: `scope`/act/Relu_output_0 ...)."""
    a = fq.a(F.relu(fq.conv(block.a, x, mod + ".a")), scope + "/act/Relu_output_0")
    r = fq.a(fq.conv(block.b, a, mod + ".b"), scope + "/b/Conv_output_0")
    return fq.a(x + r, scope + "/Add_output_0")


def forward(net: FFDNetLite, x: torch.Tensor, sigma: torch.Tensor, fq: FakeQuant) -> torch.Tensor:
    """FFDNetLite.forward (nets.py) rounding what the int8 graph rounds; the tensor names are the exporter's."""
    if not isinstance(net, FFDNetLite):
        raise TypeError("--qat supports the flat FFDNet-lite net only")
    y = fq.a(net.unshuffle(x), "/unshuffle/Squeeze_output_0")
    level = fq.a(sigma.expand(-1, 1, y.shape[2], y.shape[3]), "/Expand_output_0")
    h = fq.conv(net.head, fq.a(torch.cat([y, level], dim=1), "/Concat_1_output_0"), "head")
    b = fq.a(h, "/head/Conv_output_0")
    for i, block in enumerate(net.body):
        if i == net.context_at:
            c = fq.a(fq.conv(net.ctx_down, b, "ctx_down"), "/ctx_down/Conv_output_0")
            for j, cb in enumerate(net.ctx):
                c = _block(cb, c, fq, f"ctx.{j}", f"/ctx/ctx.{j}")
            c = fq.a(fq.conv(net.ctx_up, c, "ctx_up"), "/ctx_up/ConvTranspose_output_0")
            b = fq.a(b + c, "/Add_output_0")
        b = _block(block, b, fq, f"body.{i}", f"/body.{i}")
    out = net.shuffle(fq.conv(net.tail, b + h, "tail"))  # the long skip (fp32_nodes) reads the unrounded head output
    return out.clamp(0.0, 1.0) if net.clamp else out


def parity(net: FFDNetLite, fq: FakeQuant, int8: str | Path, seed: int = 5) -> float:
    """Max |qat.forward - onnxruntime(int8 file)| on a noisy random crop: how closely training mimics the int8 build."""
    import onnxruntime as ort

    model = copy.deepcopy(net).eval()
    model.clamp = True
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, 3, 96, 128, generator=g) * 0.8 + 0.1 + torch.randn(1, 3, 96, 128, generator=g) * 0.1).clamp(0, 1)
    s = torch.full((1, 1, 1, 1), 25 / 255)
    with torch.no_grad():
        ref = forward(model, x, s, fq).numpy()
    sess = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    got = sess.run(["output"], {"input": x.numpy(), "sigma": s.numpy()})[0]
    return float(np.abs(ref - got).max())
