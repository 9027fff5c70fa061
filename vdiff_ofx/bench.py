"""`vdiff bench`: megapixels per second for each loadable provider and tile size, on a synthetic natural frame."""

from __future__ import annotations

import statistics
import time

import numpy as np

from .engine.enhancer import Enhancer
from .engine.models import get_model
from .engine.providers import CHAIN, Backend, available, normalise
from .engine.session import ModelSession
from .errors import VdiffError


def test_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Gradients, edges and noise: enough structure that no backend takes a shortcut on constant data."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(xx / (31 + 7 * c)) * np.cos(yy / (19 + 5 * c)) for c in range(3)], -1)
    return np.clip(img + rng.normal(0, 0.08, img.shape), 0, 1).astype(np.float32)


def time_enhancer(enh: Enhancer, frame: np.ndarray, repeat: int) -> float:
    """Median seconds per frame after one warm-up run."""
    enh(frame)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        enh(frame)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_bench(model: str, backend: Backend, size: str, tiles: str, repeat: int) -> list[dict]:
    spec = get_model(model)
    try:
        width, height = (int(v) for v in size.lower().split("x"))
        tile_list = [int(t) for t in tiles.split(",")]
    except ValueError:
        raise VdiffError(f"--size {size} / --tiles {tiles}: expected WxH and a comma list of integers") from None
    frame = test_frame(height, width)
    wanted = backend.providers or [p for p in CHAIN if p in available()]
    rows = []
    print(f"vdiff bench: model {spec.name}, {width}x{height}, median of {repeat}")
    print(f"{'provider':<28} {'tile':>6} {'s/frame':>9} {'fps':>7} {'MP/s':>7}")
    for prov in wanted:
        prov = normalise(prov)  # `--providers cpu` names CPUExecutionProvider
        b = Backend(providers=[prov], device_id=backend.device_id, fp16=backend.fp16, threads=backend.threads)
        try:
            session = ModelSession(spec, b)
        except VdiffError as exc:
            print(f"{prov:<28} cannot load: {exc}")
            continue
        if session.provider != b.providers[0] and b.providers[0] != session.provider:
            print(f"{prov:<28} not loadable here (fell back to {session.provider}); skipped")
            continue
        for tile in tile_list:
            enh = Enhancer(spec, tile=tile or None, session=session)
            if tile == 0:
                enh.tile = max(width, height)
            sec = time_enhancer(enh, frame, repeat)
            row = {"provider": session.provider, "tile": tile or "full", "seconds": sec, "fps": 1 / sec,
                   "mpps": width * height / sec / 1e6}
            rows.append(row)
            print(f"{row['provider']:<28} {str(row['tile']):>6} {sec:9.3f} {row['fps']:7.2f} {row['mpps']:7.2f}")
    return rows
