"""The one inference path every adapter uses: frames in, enhanced frame out.

Handles what differs between models so callers do not: strength, size multiples (pad and crop), scale > 1,
temporal windows (N frames in, one out; neighbours motion-compensated when the model asks for it), alpha
(carried, resized for upscalers) and tiling (auto-sized from free memory when not given).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import cv2
import numpy as np

from ..errors import ModelError, VdiffError
from ..ops.align import MODES, FlowAligner
from .memory import free_host_bytes, gpu_info
from .models import ModelSpec, get_model
from .planes import flip, to_pixels, to_planes, unflip
from .providers import Backend
from .session import ModelSession, warm_session
from .tiling import pad_to_multiple, run_tiled

# Rough activation memory per output pixel for the small CNNs vdiff ships (fp32, a few live feature maps): measured
# peaks in onnxruntime CPU are 150-280 B (denoise, denoise-hq, denoise-temporal at 1080p) and 130 B per output pixel
# for upscale2x, so this keeps a wide margin. A temporal window only adds its input frames (WINDOW_BYTES each),
# since the first layer fuses them.
BYTES_PER_PIXEL = 2048
WINDOW_BYTES = 2 * 3 * 4
# On a GPU a fresh process held 440-1450 B per output pixel after whole frames (CUDA context, cuDNN workspace and
# onnxruntime's arena included; every shipped model at 1080p and 4K, benchmarks/bench_gpu.py --memory on an H200),
# so tiles are sized from 1536 B per pixel and 60 % of the free memory (the host application may hold more later).
GPU_BYTES_PER_PIXEL = 1536
GPU_SHARE = 0.6


# Test-time augmentation: how many of the 8 flips/transposes of the input are run and averaged. Why: a final render
# can trade time for quality (EDSR+, waifu2x "tta"), and averaging 8 views also lowers the CNN's fixed-pattern error.
TTA_MODES = (1, 2, 4, 8)

# Spatial partner of a motion-compensated temporal model (the manifest's `spatial` and `temporal_share`): per pixel
# out = S + w (T - S), S the single-frame model's output of the centre frame, T the temporal model's, and
# w = temporal_share x (neighbours the aligner trusted there) / (neighbours in the window). Why: the two err
# differently -- T is steadier and gains where neighbours line up, S (a bigger spatial net) is sharper on new content
# and occlusions -- so the blend beats both (models/denoise-temporal.md); fewer trusted neighbours shift it to S.
DEFAULT_TEMPORAL_SHARE = 1.0


def temporal_weight(support: np.ndarray, share: float, neighbours: int) -> np.ndarray:
    """w of the blend above, per pixel, from the aligner's support map (0..neighbours)."""
    return np.clip(support * (share / max(neighbours, 1)), 0.0, 1.0)


def tta_average(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, views: int) -> np.ndarray:
    """Mean of ``run`` over the first ``views`` flips/transposes of NCHW ``x``, each mapped back."""
    acc = run(x)
    for t in range(1, views):
        acc += unflip(run(flip(x, t)), t)
    if views > 1:
        acc /= views
    return acc


class Enhancer:
    """Apply one model to frames. ``process(window)`` takes ``window`` HxWx3(4) float32 frames, returns one."""

    def __init__(
        self,
        model: str | ModelSpec,
        backend: Backend | None = None,
        tile: int | None = None,
        overlap: int | None = None,
        strength: float | None = None,
        batch: int | None = None,
        session: ModelSession | None = None,
        align: str | None = None,
        tta: int = 1,
        spatial: str | None = None,
    ) -> None:
        if tta not in TTA_MODES:  # checked before the (slow) session load
            raise VdiffError(f"--tta {tta} must be one of {', '.join(map(str, TTA_MODES))}")
        self.spec = model if isinstance(model, ModelSpec) else get_model(model)
        self.session = session or warm_session(self.spec, backend)
        if strength is not None:
            if not self.spec.strength:
                raise VdiffError(f"model '{self.spec.name}' has no strength control; drop --strength")
            lo, hi = self.spec.strength.min, self.spec.strength.max
            if not lo <= strength <= hi:
                raise VdiffError(f"--strength {strength} is outside {lo}..{hi} for model '{self.spec.name}'")
        self.strength = strength
        self.tile = tile
        self.overlap = overlap if overlap is not None else max(3 * self.spec.receptive_field, 24)
        if self.tile is not None and self.tile <= 2 * self.overlap:
            raise VdiffError(f"--tile {self.tile} must be larger than twice the overlap ({self.overlap})")
        self.batch = batch or (8 if self.session.on_gpu else 1)
        self.align = align or str(self.spec.extra.get("align", "none"))
        if self.align not in MODES:
            raise VdiffError(f"align '{self.align}' is not one of {', '.join(MODES)}")
        self.aligner = FlowAligner() if self.align == "flow" and self.window > 1 else None
        self.tta = tta
        self.spatial_spec = self._spatial_spec(spatial if spatial is not None else self.spec.extra.get("spatial"))
        self.temporal_share = float(self.spec.extra.get("temporal_share", DEFAULT_TEMPORAL_SHARE))
        if not 0.0 <= self.temporal_share <= 1.0:
            raise ModelError(f"model '{self.spec.name}': temporal_share {self.temporal_share} is outside 0..1")
        self._spatial: Enhancer | None = None
        self._tiles: dict[tuple[int, int], int] = {}  # frame size -> auto tile

    def _spatial_spec(self, name: str | None) -> ModelSpec | None:
        """The single-frame model blended with an aligned temporal one ("none": the temporal model alone)."""
        if not name or name == "none" or self.aligner is None:
            return None
        spec = get_model(str(name))
        if spec.temporal_window != 1 or spec.scale != self.scale or spec.task != self.spec.task:
            raise VdiffError(f"spatial model '{spec.name}' must be a single-frame {self.spec.task} model at scale {self.scale}")
        return spec

    def _spatial_enhancer(self) -> "Enhancer":
        """Loaded on first need; follows this Enhancer's strength at each use."""
        if self._spatial is None:
            self._spatial = Enhancer(self.spatial_spec, backend=self.session.backend,
                                     batch=self.batch, tta=self.tta, spatial="none")
        sp = self._spatial
        if sp.spec.strength:
            sp.strength = min(max(self.noise_sigma, sp.spec.strength.min), sp.spec.strength.max)
        return sp

    def _blend_spatial(self, out: np.ndarray, centre: np.ndarray, support: np.ndarray) -> np.ndarray:
        """``out`` blended with the spatial model's output of ``centre`` (weights: DEFAULT_TEMPORAL_SHARE's comment).

        Only the bounding box of the pixels where the spatial model counts (plus its tile overlap) is run through it.
        """
        weight = temporal_weight(support, self.temporal_share, self.window - 1)
        ys, xs = np.nonzero(weight < 0.999)
        if len(ys) == 0:
            return out
        sp = self._spatial_enhancer()
        m = sp.overlap
        y0, y1 = max(int(ys.min()) - m, 0), min(int(ys.max()) + 1 + m, centre.shape[0])
        x0, x1 = max(int(xs.min()) - m, 0), min(int(xs.max()) + 1 + m, centre.shape[1])
        spatial = sp.process([np.ascontiguousarray(centre[y0:y1, x0:x1, :3])])[..., :3]
        region = out[y0:y1, x0:x1, :3]
        w = weight[y0:y1, x0:x1, None]
        out[y0:y1, x0:x1, :3] = spatial + w * (region - spatial)
        return out

    @property
    def noise_sigma(self) -> float:
        """The noise level the aligner trusts differences by: the strength asked for, else the model's default.

        Read at every use: callers change ``strength`` on a live Enhancer (per sigma, or after `--strength auto`).
        """
        if self.strength is not None:
            return float(self.strength)
        return self.spec.strength.default if self.spec.strength else 0.0

    @property
    def window(self) -> int:
        return self.spec.temporal_window

    @property
    def scale(self) -> int:
        return self.spec.scale

    def auto_tile(self, height: int, width: int) -> int:
        """Largest tile that fits in the free memory (whole frame when it fits), measured once per frame size:
        on a GPU the query (nvidia-smi) costs more than a 1080p frame's inference."""
        key = (height, width)
        if key not in self._tiles:
            self._tiles[key] = self._fit_tile(height, width)
        return self._tiles[key]

    def _fit_tile(self, height: int, width: int) -> int:
        if self.session.on_gpu:
            info = gpu_info(self.session.backend.device_id)
            budget, activations = int((int(info["free_bytes"]) if info else 4 << 30) * GPU_SHARE), GPU_BYTES_PER_PIXEL
            if self.tta > 4 and height != width:
                budget //= 2  # the transposed views run in a session of their own (session.SHAPES_PER_GPU_SESSION)
        else:
            budget, activations = free_host_bytes() // 3, BYTES_PER_PIXEL
        per_pixel = activations * self.scale * self.scale + WINDOW_BYTES * self.window
        pixels = max(budget // per_pixel, 256 * 256)
        if height * width <= pixels:
            return max(height, width)
        side = int(math.sqrt(pixels))
        multiple = max(self.spec.size_multiple, 8)
        return max(side - side % multiple, 2 * self.overlap + multiple)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return tta_average(lambda v: self.session.run(v, self.strength), x, self.tta)

    def process(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Enhance the middle frame of ``frames`` (len == window) and return it as HxWxC float32."""
        if len(frames) != self.window:
            raise ModelError(f"model '{self.spec.name}' needs {self.window} frames, got {len(frames)}")
        centre = frames[len(frames) // 2]
        support = None
        if self.aligner is not None:
            frames, support = self.aligner.align(frames, self.noise_sigma)
        h, w = centre.shape[:2]
        alpha = centre[..., 3] if centre.shape[-1] == 4 else None
        chw = to_planes(frames)
        tile = self.tile or self.auto_tile(h, w)
        if tile >= max(h, w):
            x, _, _ = pad_to_multiple(chw[None], self.spec.size_multiple)
            y = self._infer(x)[0, :, : h * self.scale, : w * self.scale]
        else:
            y = run_tiled(self._infer, chw, tile, self.overlap, self.scale, self.spec.size_multiple, self.batch)
        out = to_pixels(y)
        if self.spatial_spec is not None and support is not None:
            out = self._blend_spatial(np.array(out, np.float32), centre, support)
        if alpha is not None:
            if self.scale != 1:
                alpha = cv2.resize(alpha, (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)
            out = np.concatenate([out, alpha[..., None]], axis=-1)
        return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Single-frame convenience: edge-replicate the frame to fill a temporal window."""
        return self.process([frame] * self.window)
