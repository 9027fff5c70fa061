"""8-bit integer version of a trained denoiser for CPUs: static QDQ quantization calibrated on training images.

Why: onnxruntime runs int8 convolutions on a CPU's integer dot-product units (AVX-VNNI / AVX512-VNNI, AMX) 2-3x faster
than fp32 ones. The convolutions that read or write pixels stay fp32, so the image itself never goes through an 8-bit
step: only the network's inner features do. Calibration sees only training images (data.TRAIN_SKIMAGE), never the
held-out set, with noise at the strengths the model serves; the result is byte-reproducible from the seed.

    python -m vdiff_ofx.train.quantize --model models/denoise-hq.onnx --out models/denoise-hq-int8.onnx
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from vdiff_ofx.train import data

SIGMAS = (5, 10, 15, 25, 35, 50)


def calibration_feeds(crops: int, size: int, seed: int) -> list[dict[str, np.ndarray]]:
    """``crops`` noisy training crops (size x size) with their sigma input, cycling over the training images."""
    images = data.skimage_images(data.TRAIN_SKIMAGE)
    names = [n for n in images if min(images[n].shape[:2]) >= size]
    rng = np.random.default_rng(seed)
    feeds = []
    for k in range(crops):
        img = images[names[k % len(names)]]
        y, x = rng.integers(0, img.shape[0] - size + 1), rng.integers(0, img.shape[1] - size + 1)
        sigma = float(rng.choice(SIGMAS))
        crop = img[y:y + size, x:x + size]
        noisy = np.clip(crop + rng.normal(0, sigma / 255, crop.shape), 0, 1).astype(np.float32)
        feeds.append({"input": np.ascontiguousarray(np.transpose(noisy, (2, 0, 1))[None]),
                      "sigma": np.full((1, 1, 1, 1), sigma / 255, np.float32)})
    return feeds


def _graph(model: Path) -> tuple[list, dict[str, object], dict[str, list]]:
    """The graph's nodes, each tensor's producer and each tensor's consumers."""
    import onnx

    nodes = list(onnx.load(str(model)).graph.node)
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return nodes, {out: n for n in nodes for out in n.output}, consumers


def _pixel_paths(model: Path) -> tuple[set[str], set[str]]:
    """(the convolutions that read the input pixels, those that write the output pixels)."""
    _, producer, consumers = _graph(model)

    def walk(start: str, forward: bool, keep: set[str]) -> None:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            for n in consumers.get(name, []) if forward else [producer[name]] if name in producer else []:
                if n.name in seen:
                    continue
                seen.add(n.name)
                if n.op_type in ("Conv", "ConvTranspose"):
                    keep.add(n.name)
                else:
                    todo += list(n.output if forward else n.input)

    reading, writing = set(), set()
    walk("input", True, reading)
    walk("output", False, writing)
    return reading, writing


def pixel_convs(model: Path) -> list[str]:
    """The convolutions that read the input pixels or write the output pixels (with no other convolution between):
    kept fp32, so the image itself never goes through an 8-bit step, only the inner features do."""
    reading, writing = _pixel_paths(model)
    return sorted(reading | writing)


def fp32_nodes(model: Path) -> list[str]:
    """What stays fp32: the pixel convolutions; the Add that feeds an output-side one (denoise-hq's long skip): an
    8-bit sum there put every output pixel through features rounded to 256 levels (held-out sigma 25: 32.22 dB with it
    fp32, 32.16 without, for ~7 % more time); and the node that feeds an input-side one (denoise-hq's Concat of the
    pixels and the noise-level map): quantized, that Concat rounded the input pixels to 8 bits (and the sigma map to
    its calibrated 0..50 range) before the fp32 head read them, which cost nothing measurable on the 8-bit held-out
    images (sigma 15/25/50 within 0.002 dB) but threw away a 10- or 16-bit source's precision."""
    nodes, producer, _ = _graph(model)
    reading, writing = _pixel_paths(model)
    feeding = {producer[n.input[0]].name for n in nodes if n.name in reading | writing and n.input[0] in producer
               and (n.name in reading or producer[n.input[0]].op_type == "Add")}
    return sorted(reading | writing) + sorted(feeding)


def quantize(model: Path, out: Path, crops: int = 24, size: int = 128, seed: int = 0) -> None:
    """Write the int8 QDQ version of ``model`` to ``out`` (per-channel int8 weights, uint8 activations,
    percentile calibration: the 99.999th keeps rare outliers from stretching every feature's scale)."""
    feeds = calibration_feeds(crops, size, seed)
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=fp32_nodes(model), calibrate_method=CalibrationMethod.Percentile,
                        # each consumer its own Q/DQ pair, so the fp32 nodes read their inputs unrounded
                        extra_options={"ActivationSymmetric": False, "DedicatedQDQPair": True})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("models/denoise-hq.onnx"), help="the fp32 ONNX denoiser")
    p.add_argument("--out", type=Path, default=Path("models/denoise-hq-int8.onnx"))
    p.add_argument("--crops", type=int, default=24, help="calibration crops")
    p.add_argument("--size", type=int, default=128, help="calibration crop side")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    quantize(args.model, args.out, args.crops, args.size, args.seed)
    from vdiff_ofx.engine.models import sha256_file

    print(f"{args.out}: sha256 {sha256_file(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
