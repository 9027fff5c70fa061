"""One warm onnxruntime session per model: provider fallback, and IoBinding on a GPU to skip needless copies."""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from typing import Any

import numpy as np

from ..errors import ModelError
from .models import ModelSpec
from .providers import GPU, Backend, chain

log = logging.getLogger(__name__)


_WARNED: set[str] = set()

# On CUDA, one onnxruntime session that sees its input shape change pays for it at every change (cuDNN plans and
# memory are set up again): 1080p `denoise` took 9 ms a run with one shape, 49 ms with 4 runs of a frame and 4 of its
# transpose, 156 ms alternating, and 9 ms again with a session per shape (H200, session.run alone; docs/gpu.md).
# `--tta 8` (transposed views) and tiles (a smaller last batch) each need two shapes per frame, so a GPU session keeps
# up to this many shapes in sessions of their own; more shapes share the first session.
SHAPES_PER_GPU_SESSION = 2


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


class ModelSession:
    """A loaded, checksum-verified model. ``run`` takes and returns NCHW float32 arrays."""

    def __init__(self, spec: ModelSpec, backend: Backend | None = None, verify: bool = True) -> None:
        import onnxruntime as ort

        ort.set_default_logger_severity(4)  # our own one-line messages replace onnxruntime's C++ log spam
        self.spec = spec
        self.backend = backend or Backend()
        if verify:
            spec.verify()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.backend.threads:
            opts.intra_op_num_threads = self.backend.threads
        opts.log_severity_level = 3
        # Idle workers sleep instead of spinning: the same inference speed on a CPU (measured), and the cores it
        # frees are the ones the pipeline's decode/encode threads need (benchmarks/bench_pipeline.py).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = chain(self.backend)
        captured = io.StringIO()

        def load() -> Any:
            return ort.InferenceSession(str(spec.file), sess_options=opts, providers=[n for n, _ in providers],
                                        provider_options=[o for _, o in providers])
        try:
            # onnxruntime print()s provider failures to stdout, which would corrupt `vdiff pipe` output
            with contextlib.redirect_stdout(captured):
                self._session = load()
        except Exception as exc:  # a GPU provider that fails to initialise: retry on CPU alone
            if len(providers) > 1:
                log.warning("GPU providers failed for %s (%s); falling back to CPU", spec.name, str(exc).splitlines()[0])
                try:
                    with contextlib.redirect_stdout(captured):
                        self._session = ort.InferenceSession(str(spec.file), sess_options=opts,
                                                             providers=["CPUExecutionProvider"])
                except Exception as exc2:
                    raise ModelError(f"model '{spec.name}' cannot be loaded: {str(exc2).splitlines()[0]}") from None
            else:
                raise ModelError(f"model '{spec.name}' cannot be loaded: {str(exc).splitlines()[0]}") from None
        self.providers: list[str] = self._session.get_providers()
        self.requested = [n for n, _ in providers]
        missing = [n for n in self.requested if n in GPU and n not in self.providers]
        if captured.getvalue().strip():
            log.info("onnxruntime: %s", " ".join(captured.getvalue().split())[:500])
        if missing:
            _warn_once(f"{', '.join(p.replace('ExecutionProvider', '') for p in missing)} could not load "
                       f"(GPU, driver or CUDA/cuDNN/TensorRT libraries missing); running '{spec.name}' on "
                       f"{self.providers[0]}. `vdiff doctor` shows details.")
        inputs = self._session.get_inputs()
        self.image_input = next((i.name for i in inputs if i.name == "input"), inputs[0].name)
        self.strength_input = spec.strength.input if spec.strength else None
        names = {i.name for i in inputs}
        if self.strength_input and self.strength_input not in names:
            raise ModelError(f"model '{spec.name}': manifest names strength input '{self.strength_input}', "
                             f"the graph has {sorted(names)}")
        self.output = self._session.get_outputs()[0].name
        self.on_gpu = self.providers[0] in GPU
        self._lock = threading.Lock()
        self._load = load
        self._by_shape: dict[tuple[int, ...], Any] = {}  # CUDA: input shape -> the session that runs it

    @property
    def provider(self) -> str:
        """The provider that actually runs the model (first of the loaded ones)."""
        return self.providers[0]

    def feeds(self, x: np.ndarray, strength: float | None) -> dict[str, np.ndarray]:
        feeds = {self.image_input: np.ascontiguousarray(x, dtype=np.float32)}
        if self.strength_input:
            value = self.spec.strength.default if strength is None else strength
            feeds[self.strength_input] = np.full((x.shape[0], 1, 1, 1), value * self.spec.strength.per_unit, np.float32)
        return feeds

    def run(self, x: np.ndarray, strength: float | None = None) -> np.ndarray:
        """Run one batch. On a GPU the input is bound once and the output stays on the device until read."""
        feeds = self.feeds(x, strength)
        with self._lock:
            if self.on_gpu and self.provider == "CUDAExecutionProvider":
                y = self._run_bound(self._for_shape(x.shape), feeds)
            else:
                y = self._session.run([self.output], feeds)[0]
        return self.blend(x, y, strength)

    def blend(self, x: np.ndarray, y: np.ndarray, strength: float | None) -> np.ndarray:
        """The manifest's strength.blend: keep that share of the network's change (all of it without a table); a
        temporal model's change is to the middle frame of its window."""
        knob = self.spec.strength
        if not knob or not knob.blend:
            return y
        if self.spec.temporal_window > 1:  # the change is to the middle frame of the stacked window
            mid = self.spec.temporal_window // 2 * y.shape[1]
            x = x[:, mid:mid + y.shape[1]]
        return knob.keep(x, y, strength)

    def _for_shape(self, shape: tuple[int, ...]) -> Any:
        """The session that runs inputs of ``shape`` (SHAPES_PER_GPU_SESSION says why there can be several)."""
        shape = tuple(shape)
        if shape not in self._by_shape:
            if len(self._by_shape) >= SHAPES_PER_GPU_SESSION:
                return self._session
            if self._by_shape:
                with contextlib.redirect_stdout(io.StringIO()):  # as in __init__: keep stdout clean for pipes
                    self._by_shape[shape] = self._load()
            else:
                self._by_shape[shape] = self._session
        return self._by_shape[shape]

    def _run_bound(self, session: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
        import onnxruntime as ort

        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", self.backend.device_id))
        binding.bind_output(self.output, "cuda", self.backend.device_id)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def describe(self) -> dict[str, Any]:
        return {"model": self.spec.name, "provider": self.provider, "loaded": self.providers,
                "requested": self.requested}


_CACHE: dict[tuple[str, str, str, str], ModelSession] = {}
_CACHE_LOCK = threading.Lock()


def warm_session(spec: ModelSpec, backend: Backend | None = None) -> ModelSession:
    """Return a cached session for (model, checksum, backend) so servers and repeated jobs skip the load."""
    backend = backend or Backend()
    key = (spec.name, spec.sha256, repr(spec.strength), repr(backend))  # the strength's blend acts in the session
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = ModelSession(spec, backend)
        return _CACHE[key]
