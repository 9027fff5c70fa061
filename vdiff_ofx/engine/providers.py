"""The execution-provider chain: fastest first, CPU always last so a missing GPU library never stops a job.

Names follow onnxruntime's (``TensorrtExecutionProvider``...) and the short forms the CLI takes (``trt``, ``cuda``,
``coreml``, ``dml``, ``cpu``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VdiffError
from ..paths import user_dir

CHAIN = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)
SHORT = {"trt": CHAIN[0], "tensorrt": CHAIN[0], "cuda": CHAIN[1], "coreml": CHAIN[2], "dml": CHAIN[3],
         "directml": CHAIN[3], "cpu": CHAIN[4]}
GPU = set(CHAIN[:4])


@dataclass
class Backend:
    """How to run a model. Turn ``providers`` first (e.g. ``["cpu"]`` to rule a GPU out), then ``fp16``.

    providers: ordered short or full provider names; None picks every available one in CHAIN order.
    device_id: GPU index for CUDA/TensorRT/DirectML.
    fp16: half precision where the provider supports it (TensorRT); the model keeps fp32 I/O.
    threads: CPU intra-op threads (0 lets onnxruntime choose).
    trt_cache: folder for TensorRT engine files so the second start is fast.
    """

    providers: list[str] | None = None
    device_id: int = 0
    fp16: bool = True
    threads: int = 0
    trt_cache: Path | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


def available() -> list[str]:
    """Providers this onnxruntime build offers (offered is not loaded: a GPU library may still be missing)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def normalise(name: str) -> str:
    full = SHORT.get(name.lower(), name)
    if full not in CHAIN and not full.endswith("ExecutionProvider"):
        raise VdiffError(f"unknown provider '{name}' (choose from {', '.join(sorted(set(SHORT)))})")
    return full


def chain(backend: Backend) -> list[tuple[str, dict[str, Any]]]:
    """The providers to hand to InferenceSession, with their option dicts, CPU appended as the safety net."""
    offered = available()
    wanted = [normalise(p) for p in backend.providers] if backend.providers else [p for p in CHAIN if p in offered]
    result: list[tuple[str, dict[str, Any]]] = []
    for name in wanted:
        if name not in offered:
            continue
        opts: dict[str, Any] = dict(backend.options.get(name, {}))
        if name == "TensorrtExecutionProvider":
            cache = backend.trt_cache or user_dir("cache") / "trt"
            Path(cache).mkdir(parents=True, exist_ok=True)
            opts.setdefault("device_id", backend.device_id)
            opts.setdefault("trt_fp16_enable", bool(backend.fp16))
            opts.setdefault("trt_engine_cache_enable", True)
            opts.setdefault("trt_engine_cache_path", str(cache))
            opts.setdefault("trt_timing_cache_enable", True)
        elif name in ("CUDAExecutionProvider", "DmlExecutionProvider"):
            opts.setdefault("device_id", backend.device_id)
            if name == "CUDAExecutionProvider":
                # grow the memory arena by what is asked, not to the next power of two: 14-30 % less GPU memory
                # held at 1080p/4K, same speed (benchmarks/bench_gpu.py --memory)
                opts.setdefault("arena_extend_strategy", "kSameAsRequested")
        result.append((name, opts))
    if not any(n == "CPUExecutionProvider" for n, _ in result):
        result.append(("CPUExecutionProvider", {}))
    return result
