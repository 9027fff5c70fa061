"""The shipped models on onnxruntime's CUDA provider, where one really runs (a GPU, its driver and CUDA/cuDNN):
the same output as the CPU provider, tiles that blend like whole frames, and batches through IoBinding.

Skipped where CUDA does not load, as on CI; run on a GPU machine (benchmarks/bench_gpu.py gives the speed rows).
"""

from __future__ import annotations

import numpy as np
import pytest

from vdiff_ofx.bench import test_frame as natural_frame
from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.engine.models import get_model
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.engine.session import ModelSession

CUDA = "CUDAExecutionProvider"
SHIPPED = ("denoise", "denoise-hq", "denoise-temporal-fast", "denoise-temporal", "deblock-fast", "deblock", "upscale2x",
           "upscale4x")


def _cuda_runs() -> bool:
    try:
        return ModelSession(get_model("denoise"), Backend(providers=["cuda"])).provider == CUDA
    except Exception:  # noqa: BLE001 - any failure to load means: no usable CUDA here
        return False


pytestmark = pytest.mark.skipif(not _cuda_runs(), reason="onnxruntime's CUDA provider does not load here")


def _window(name: str, h: int = 144, w: int = 256) -> list[np.ndarray]:
    frame = natural_frame(h, w, seed=5)
    rng = np.random.default_rng(2)
    n = get_model(name).temporal_window
    return [np.clip(np.roll(frame, k - n // 2, axis=1) + rng.normal(0, 0.04, frame.shape), 0, 1).astype(np.float32)
            for k in range(n)]


def _enhancer(name: str, provider: str, **kw) -> Enhancer:
    spec = get_model(name)
    return Enhancer(spec, backend=Backend(providers=[provider]), strength=20.0 if spec.strength else None, **kw)


@pytest.mark.parametrize("name", SHIPPED)
def test_cuda_output_matches_the_cpu_provider(name):
    frames = _window(name)
    gpu = _enhancer(name, "cuda")
    assert gpu.session.provider == CUDA and gpu.session.on_gpu
    a = gpu.process(frames)
    b = _enhancer(name, "cpu").process(frames)
    assert a.shape == b.shape == (144 * gpu.scale, 256 * gpu.scale, 3)
    diff = np.abs(a - b)
    # TF32 convolutions on Ampere and later round differently from the CPU's fp32, well below one 10-bit code on average
    assert float(diff.mean()) < 0.25 / 1023, float(diff.mean()) * 1023
    assert float(diff.max()) < 8 / 1023, float(diff.max()) * 1023


@pytest.mark.parametrize("name", ("denoise", "upscale2x"))
def test_cuda_tiles_in_batches_blend_like_the_whole_frame(name):
    frames = _window(name, 288, 512)
    whole = _enhancer(name, "cuda")
    whole.tile = 512
    tiled = _enhancer(name, "cuda", tile=2 * whole.overlap + 64, batch=8)
    a, b = whole.process(frames), tiled.process(frames)
    assert a.shape == b.shape
    assert float(np.abs(a - b).max()) < 2 / 1023


def test_cuda_session_runs_a_batch_through_iobinding():
    session = ModelSession(get_model("denoise"), Backend(providers=["cuda"]))
    x = np.stack([np.transpose(natural_frame(64, 96, seed=s), (2, 0, 1)) for s in range(3)])
    y = session.run(x, 15.0)
    assert y.dtype == np.float32 and y.shape == (3, 3, 64, 96)
    one = session.run(x[1:2], 15.0)
    assert float(np.abs(y[1:2] - one).max()) < 1e-3


@pytest.mark.parametrize("name", ("denoise", "upscale2x"))
def test_cuda_tta8_runs_each_orientation_in_its_own_session_and_matches_the_cpu(name):
    frames = _window(name, 144, 256)
    fresh = ModelSession(get_model(name), Backend(providers=["cuda"]))  # the cached one may hold other shapes
    gpu = _enhancer(name, "cuda", tta=8, session=fresh)
    a = gpu.process(frames)
    b = _enhancer(name, "cpu", tta=8).process(frames)
    assert {s[-2:] for s in gpu.session._by_shape} >= {(144, 256), (256, 144)}
    assert a.shape == b.shape
    assert float(np.abs(a - b).max()) < 8 / 1023
