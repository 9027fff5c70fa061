"""Small real ONNX models built with onnx.helper, registered in a throwaway manifest, for engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from vdiff_ofx.engine.models import sha256_file


def _conv(name: str, x: str, cin: int, cout: int, rng: np.random.Generator, nodes: list, inits: list,
          relu: bool = True) -> str:
    w = (rng.standard_normal((cout, cin, 3, 3)) / (3 * np.sqrt(cin))).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.01).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
    nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_y"], pads=[1, 1, 1, 1]))
    if relu:
        nodes.append(helper.make_node("Relu", [f"{name}_y"], [f"{name}_r"]))
        return f"{name}_r"
    return f"{name}_y"


def build(path: Path, kind: str = "cnn", depth: int = 4, seed: int = 0) -> Path:
    """kind: cnn (residual conv net), sigma (cnn + strength input), up2 (2x via DepthToSpace),
    temporal3 (3 frames in), mult4 (needs H, W multiple of 4 via SpaceToDepth)."""
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    cin = 9 if kind == "temporal3" else 3
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", cin, "H", "W"])]
    x = "input"
    if kind == "temporal3":
        x = _conv("t", x, 9, 8, rng, nodes, inits)
        c = 8
    elif kind == "mult4":
        nodes.append(helper.make_node("SpaceToDepth", ["input"], ["s2d"], blocksize=4))
        x, c = "s2d", 48
    else:
        c = 3
    if kind == "sigma":
        inputs.append(helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["N", 1, 1, 1]))
        inits += [numpy_helper.from_array(np.array([0], np.int64), "z0"),
                  numpy_helper.from_array(np.array([1], np.int64), "z1"),
                  numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
        nodes.append(helper.make_node("Slice", ["input", "z0", "z1", "z1"], ["plane"]))
        nodes.append(helper.make_node("Mul", ["plane", "zero"], ["zeros"]))
        nodes.append(helper.make_node("Add", ["zeros", "sigma"], ["sig_map"]))
        nodes.append(helper.make_node("Concat", ["input", "sig_map"], ["with_sig"], axis=1))
        x, c = "with_sig", 4
    for i in range(depth):
        x = _conv(f"c{i}", x, c, 16, rng, nodes, inits)
        c = 16
    out_c = 3 * (4 if kind == "up2" else 16 if kind == "mult4" else 1)
    x = _conv("last", x, c, out_c, rng, nodes, inits, relu=False)
    if kind == "up2":
        nodes.append(helper.make_node("DepthToSpace", [x], ["output"], blocksize=2, mode="CRD"))
    elif kind == "mult4":
        nodes.append(helper.make_node("DepthToSpace", [x], ["d2s"], blocksize=4, mode="DCR"))
        nodes.append(helper.make_node("Sigmoid", ["d2s"], ["output"]))
    else:
        base = "input" if kind != "temporal3" else "centre"
        if kind == "temporal3":
            inits.append(numpy_helper.from_array(np.array([3], np.int64), "s3"))
            inits.append(numpy_helper.from_array(np.array([6], np.int64), "s6"))
            inits.append(numpy_helper.from_array(np.array([1], np.int64), "ax1"))
            nodes.append(helper.make_node("Slice", ["input", "s3", "s6", "ax1"], ["centre"]))
        nodes.append(helper.make_node("Mul", [x, "k"], ["scaled"]))
        inits.append(numpy_helper.from_array(np.array(0.1, np.float32), "k"))
        nodes.append(helper.make_node("Add", [base, "scaled"], ["output"]))
    out_scale = 2 if kind == "up2" else 1
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "OH", "OW"])]
    graph = helper.make_graph(nodes, kind, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    _ = out_scale
    return path


def write_manifest(folder: Path, entries: list[dict]) -> Path:
    """Write a manifest.yaml in ``folder`` listing ``entries`` (sha256 filled in from the files)."""
    for e in entries:
        e.setdefault("sha256", sha256_file(folder / e["file"]))
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "models": entries}, sort_keys=False))
    return path


def standard_set(folder: Path) -> Path:
    """All kinds above in one manifest: names cnn, sigma, up2, temporal3, mult4."""
    entries = []
    specs = {
        "cnn": dict(task="denoise"),
        "sigma": dict(task="denoise", strength={"input": "sigma", "default": 15, "min": 0, "max": 50}),
        "up2": dict(task="upscale", scale=2),
        "temporal3": dict(task="denoise", temporal_window=3),
        "mult4": dict(task="restore", size_multiple=4),
    }
    for name, extra in specs.items():
        build(folder / "models" / f"{name}.onnx", name, seed=len(entries))
        entries.append({"name": name, "file": f"models/{name}.onnx", "receptive_field": 6, **extra})
    return write_manifest(folder, entries)
