"""ONNX export of a trained denoiser plus an onnxruntime parity check.

Why: the engine only runs ONNX; the exported graph must follow manifest.yaml's contract
(inputs "input", "sigma"; output "output"; dynamic N/H/W; opset 17) and match torch numerically.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from vdiff_ofx.train.nets import FFDNetLite

OPSET = 17


def export_onnx(net: FFDNetLite, path: str | Path) -> None:
    """Write `net` (clamped to 0..1, eval mode) to `path` with dynamic batch and spatial axes."""
    model = copy.deepcopy(net).eval()
    model.clamp = True
    m = model.down
    dummy = (torch.rand(1, 3, 16 * m, 24 * m), torch.full((1, 1, 1, 1), 25 / 255))
    axes = {"input": {0: "N", 2: "H", 3: "W"}, "sigma": {0: "N"}, "output": {0: "N", 2: "H", 3: "W"}}
    with torch.no_grad():
        torch.onnx.export(
            model, dummy, str(path), input_names=["input", "sigma"], output_names=["output"],
            opset_version=OPSET, dynamic_axes=axes, do_constant_folding=True, dynamo=False,
        )


def parity_check(net: FFDNetLite, path: str | Path, tol: float = 1e-4) -> float:
    """Max |torch - onnxruntime| over two shapes/batches; raises if >= tol."""
    import onnxruntime as ort

    model = copy.deepcopy(net).eval()
    model.clamp = True
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(123)
    worst = 0.0
    m = net.down
    for n, h, w in ((1, 17 * m, 31 * m), (2, 9 * m, 13 * m)):
        x = torch.rand((n, 3, h, w), generator=g)
        s = torch.rand((n, 1, 1, 1), generator=g) * (50 / 255)
        with torch.no_grad():
            ref = model(x, s).numpy()
        got = sess.run(["output"], {"input": x.numpy(), "sigma": s.numpy()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    if worst >= tol:
        raise RuntimeError(f"onnxruntime/torch mismatch {worst:.2e} >= {tol:.0e}")
    return worst


def load_onnx_weights(net: torch.nn.Module, path: str | Path) -> int:
    """Copy a shipped ONNX file's initializers into ``net`` (names match the state_dict), to fine-tune it.

    Why: the repo ships ONNX only, yet a longer run should be able to continue from the released weights.
    Raises if a parameter of ``net`` is missing from the file or has another shape; returns how many were loaded.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # the exporter shares equal tensors: a parameter can be an Identity of another
        if node.op_type == "Identity" and node.input[0] in inits:
            inits.setdefault(node.output[0], inits[node.input[0]])
    state = net.state_dict()
    missing = [k for k in state if k not in inits or tuple(inits[k].shape) != tuple(state[k].shape)]
    if missing:
        raise ValueError(f"{path}: no matching weights for {missing[:4]} ({len(missing)} of {len(state)}); "
                         "is it the same architecture (width, blocks)?")
    net.load_state_dict({k: torch.from_numpy(inits[k].copy()) for k in state})
    return len(state)


def ship(net: torch.nn.Module, out: Path, train_s: float, export=None, parity=None) -> tuple[str, float]:
    """Export ``net`` to ``out``, check it against torch, print the line the recipes quote; (sha256, parity)."""
    import hashlib

    from vdiff_ofx.train.nets import param_count

    out.parent.mkdir(parents=True, exist_ok=True)
    (export or export_onnx)(net, out)
    diff = (parity or parity_check)(net, out)
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"exported {out} sha256={sha} params={param_count(net)} parity={diff:.2e} train={train_s:.0f}s", flush=True)
    return sha, diff
