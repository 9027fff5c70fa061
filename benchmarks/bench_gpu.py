"""GPU rows for the README: each shipped model on onnxruntime's CUDA provider against its CPU provider, same process.

First it checks that CUDA really runs each model (not a silent CPU fallback) and that its output matches the CPU
provider's on the same frames; then it times whole frames (1080p and 4K out; `upscale2x` from 960x540 and
1920x1080), 512-px tiles and `--tta 8` through the same Enhancer every adapter uses, so host copies, padding, tile
blending, flow alignment (on the CPU) and the temporal blend are all in the figure. The CPU rows (every core this
machine has) are the baseline of the ratio.

    python benchmarks/bench_gpu.py [--models denoise,deblock] [--repeat 10] [--cpu-repeat 2] [--json rows.json]

Where no CUDA provider loads it says why and exits 1 (it is a GPU benchmark; `vdiff bench` covers CPUs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vdiff_ofx.bench import test_frame  # noqa: E402
from vdiff_ofx.engine.enhancer import Enhancer  # noqa: E402
from vdiff_ofx.engine.memory import gpu_info  # noqa: E402
from vdiff_ofx.engine.models import get_model  # noqa: E402
from vdiff_ofx.engine.providers import Backend, available, normalise  # noqa: E402
from vdiff_ofx.engine.session import ModelSession  # noqa: E402

MODELS = ("denoise", "denoise-hq", "denoise-temporal-fast", "denoise-temporal", "deblock-fast", "deblock", "upscale2x")
CUDA = "CUDAExecutionProvider"  # the provider measured (--provider), set in main()


def sizes(name: str) -> list[tuple[int, int]]:
    """Input sizes (h, w) measured: 1080p and 4K out."""
    return [(1080, 1920), (2160, 3840)] if get_model(name).scale == 1 else [(540, 960), (1080, 1920)]


def header(title: str, columns: list[str]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


def window_frames(frame: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` frames of a slow pan (2 px per frame) with fresh noise, so flow alignment has real work to do."""
    rng = np.random.default_rng(1)
    out = []
    for k in range(n):
        f = np.roll(frame, 2 * (k - n // 2), axis=1)
        out.append(np.clip(f + rng.normal(0, 10 / 255, f.shape), 0, 1).astype(np.float32))
    return out


def seconds(enh: Enhancer, frames: list[np.ndarray], repeat: int) -> float:
    """Median seconds per output frame after one warm-up (the warm-up pays cuDNN's algorithm search); fewer
    runs for slow rows."""
    t = time.perf_counter()
    enh.process(frames)
    first = time.perf_counter() - t
    times = []
    for _ in range(max(2, min(repeat, int(5 / max(first, 1e-3))))):  # about 5 s a row at most
        t = time.perf_counter()
        enh.process(frames)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def enhancer(name: str, provider: str, tile: int | None = None, tta: int = 1, align: str | None = None) -> Enhancer:
    spec = get_model(name)
    enh = Enhancer(spec, backend=Backend(providers=[provider]), tile=tile, tta=tta, align=align,
                   strength=25.0 if spec.strength else None)
    if enh.session.provider != provider:
        raise RuntimeError(f"{name}: asked for {provider}, runs on {enh.session.provider}")
    return enh


def parity(name: str) -> tuple[float, float]:
    """Largest CUDA-vs-CPU difference on a 480x272 frame (x1023, i.e. in 10-bit code values) and its PSNR."""
    spec = get_model(name)
    frames = window_frames(test_frame(272, 480, seed=3), spec.temporal_window)
    a = enhancer(name, CUDA).process(frames)
    b = enhancer(name, "CPUExecutionProvider").process(frames)
    diff = np.abs(a - b)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return float(diff.max()) * 1023, (10 * np.log10(1 / mse) if mse > 0 else float("inf"))


# CUDA provider settings whose memory/speed trade the --memory section measures (onnxruntime's option names)
MEMORY_CONFIGS = {
    "default": {},
    "arena as requested": {"arena_extend_strategy": "kSameAsRequested"},
    "as requested + small cuDNN workspace": {"arena_extend_strategy": "kSameAsRequested",
                                             "cudnn_conv_use_max_workspace": "0"},
}

_CHILD = """
import json, sys, time
from vdiff_ofx.bench import test_frame
from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.engine.memory import gpu_info
from vdiff_ofx.engine.providers import Backend
name, h, w, provider, opts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
free0 = gpu_info()["free_bytes"]
enh = Enhancer(name, backend=Backend(providers=[provider], options={provider: opts}))
enh.tile = max(h, w)
frames = [test_frame(h, w)] * enh.window
enh.process(frames)
t = time.perf_counter()
for _ in range(3):
    enh.process(frames)
print(json.dumps({"bytes": free0 - gpu_info()["free_bytes"], "seconds": (time.perf_counter() - t) / 3,
                  "provider": enh.session.provider}))
"""


def memory_rows(names: list[str]) -> list[dict]:
    """GPU memory a fresh process holds after whole frames through one model (CUDA context included), per
    provider setting: what a smaller card must have free, and what the auto tile size should assume."""
    rows = []
    header("GPU memory held after whole frames (fresh process each; CUDA context included)",
           ["model", "in", "setting", "GiB held", "B per output pixel", "s/frame"])
    for name in names:
        spec = get_model(name)
        for h, w in sizes(name):
            for label, opts in MEMORY_CONFIGS.items():
                done = subprocess.run([sys.executable, "-c", _CHILD, name, str(h), str(w), CUDA, json.dumps(opts)],
                                      capture_output=True, text=True, timeout=300)
                if done.returncode:
                    print(f"| {name} | {w}x{h} | {label} | failed: {done.stderr.strip().splitlines()[-1:]} | | |")
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                if r["provider"] != CUDA:
                    print(f"| {name} | {w}x{h} | {label} | fell back to {r['provider']} | | |")
                    continue
                per_px = r["bytes"] / (h * w * spec.scale ** 2)
                rows.append({"model": name, "in": f"{w}x{h}", "setting": label, **r, "bytes_per_out_px": per_px})
                print(f"| {name} | {w}x{h} | {label} | {r['bytes'] / 2**30:.2f} | {per_px:.0f} | {r['seconds']:.4f} |",
                      flush=True)
    return rows


def diagnose() -> None:
    """Say exactly why CUDA does not load (onnxruntime's own verbose log), then stop."""
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}, offered providers: {ort.get_available_providers()}")
    if CUDA not in ort.get_available_providers():
        print("this onnxruntime build has no CUDA provider (install onnxruntime-gpu)")
        raise SystemExit(1)
    ort.set_default_logger_severity(0)
    sess = ort.InferenceSession(str(get_model("denoise").file), providers=[CUDA, "CPUExecutionProvider"])
    print("session providers:", sess.get_providers())
    raise SystemExit(1)


def shape_rows(names: list[str], repeat: int) -> list[dict]:
    """Runs whose input shape changes within a frame, with one onnxruntime session for every shape against the
    engine's session per shape (session.SHAPES_PER_GPU_SESSION): `--tta 8` (4 views of the frame, 4 of its
    transpose) and 512-px tiles in batches of 1-8 (the last batch may be smaller). Fresh sessions per row."""
    from vdiff_ofx.engine import session as session_mod

    header("Input shapes that change within a frame: one session vs a session per shape (whole frames unless tiled)",
           ["model", "in", "case", "sessions", "s/frame", "x one view, whole frame"])
    rows = []
    default = session_mod.SHAPES_PER_GPU_SESSION
    for name in names:
        spec = get_model(name)
        h, w = sizes(name)[0]
        frames = window_frames(test_frame(h, w), spec.temporal_window)
        backend = Backend(providers=[CUDA])
        strength = 25.0 if spec.strength else None
        base = None
        cases = [("one view", None, 1, 8, default), ("--tta 8", None, 8, 8, 1), ("--tta 8", None, 8, 8, default)]
        cases += [(f"tiles 512, batch {b}", 512, 1, b, per) for b in (1, 4, 8) for per in (1, default)]
        for case, tile, tta, batch, per in cases:
            session_mod.SHAPES_PER_GPU_SESSION = per
            try:
                enh = Enhancer(spec, backend=backend, session=ModelSession(spec, backend), tile=tile or max(h, w),
                               tta=tta, batch=batch, strength=strength)
                s = seconds(enh, frames, repeat)
                used = len(enh.session._by_shape)
            finally:
                session_mod.SHAPES_PER_GPU_SESSION = default
            base = base or s
            rows.append({"model": name, "in": f"{w}x{h}", "case": case, "sessions": used, "seconds": s,
                         "x_one_view": s / base})
            print(f"| {name} | {w}x{h} | {case} | {used} | {s:.4f} | {s / base:.1f} |", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeat", type=int, default=10, help="timed GPU runs per row (median)")
    ap.add_argument("--cpu-repeat", type=int, default=2, help="timed CPU runs per baseline row (median)")
    ap.add_argument("--provider", default="cuda", help="the GPU provider to measure: cuda, trt, dml, coreml")
    ap.add_argument("--memory", action="store_true", help="also measure GPU memory per model and provider setting")
    ap.add_argument("--only-memory", action="store_true", help="only the memory section")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--only-shapes", action="store_true",
                    help="only the section on input shapes that change within a frame (--tta 8, tiles)")
    args = ap.parse_args()
    global CUDA
    CUDA = normalise(args.provider)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, where they are installed
        try:
            ort.preload_dlls()
        except Exception as exc:  # noqa: BLE001 - only a hint; the session load below is the real test
            print(f"preload_dlls: {exc}")
    gpu = gpu_info()
    print(f"GPU: {gpu['name'] if gpu else 'none found by nvidia-smi'}; driver {gpu['driver'] if gpu else '-'}; "
          f"onnxruntime {ort.__version__}; providers offered: {', '.join(available())}; CPU cores {os.cpu_count()}")
    try:
        ModelSession(get_model("denoise"), Backend(providers=[CUDA]))
        if ModelSession(get_model("denoise"), Backend(providers=[CUDA])).provider != CUDA:
            diagnose()
    except Exception as exc:  # noqa: BLE001
        print(f"CUDA session failed: {exc}")
        diagnose()

    names = [m for m in args.models.split(",") if m]
    if args.only_memory:
        rows = memory_rows(names)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    if args.only_shapes:
        rows = shape_rows(names, args.repeat)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    header("CUDA vs CPU output, 480x272, strength 25", ["model", "max difference (10-bit codes)", "PSNR CUDA vs CPU dB"])
    for name in names:
        worst, p = parity(name)
        print(f"| {name} | {worst:.3f} | {p:.1f} |", flush=True)

    rows = []
    header("Speed through the Enhancer (median; GPU after a warm-up run)",
           ["model", "in", "out", "provider", "tile", "tta", "s/frame", "fps", "out MP/s", "x CPU"])
    for name in names:
        spec = get_model(name)
        for size_no, (h, w) in enumerate(sizes(name)):
            frames = window_frames(test_frame(h, w), spec.temporal_window)
            cases = [(CUDA, None, 1)]
            if size_no == 0:
                cases = [("CPUExecutionProvider", None, 1)] + cases + [(CUDA, 512, 1), (CUDA, None, 8)]
            cpu_s = None
            for provider, tile, tta in cases:
                enh = enhancer(name, provider, tile=tile, tta=tta)
                if tile is None:
                    enh.tile = max(h, w)  # whole frame, as `vdiff bench --tiles 0`
                s = seconds(enh, frames, args.cpu_repeat if provider != CUDA else args.repeat)
                if provider != CUDA:
                    cpu_s = s
                out_mp = h * w * spec.scale ** 2 / 1e6
                row = {"model": name, "in": f"{w}x{h}", "out": f"{w * spec.scale}x{h * spec.scale}",
                       "provider": provider.replace("ExecutionProvider", ""), "tile": tile or "full", "tta": tta,
                       "seconds": s, "fps": 1 / s, "out_mpps": out_mp / s,
                       "x_cpu": (cpu_s / s) if cpu_s and provider == CUDA and size_no == 0 else None}
                rows.append(row)
                ratio = f"{row['x_cpu']:.1f}" if row["x_cpu"] else "-"
                print(f"| {name} | {row['in']} | {row['out']} | {row['provider']} | {row['tile']} | {tta} | "
                      f"{s:.4f} | {1 / s:.2f} | {out_mp / s:.1f} | {ratio} |", flush=True)
        if spec.temporal_window > 1 and spec.extra.get("align") == "flow":
            h, w = sizes(name)[0]
            frames = window_frames(test_frame(h, w), spec.temporal_window)
            enh = enhancer(name, CUDA, align="none")
            enh.tile = max(h, w)
            s = seconds(enh, frames, args.repeat)
            rows.append({"model": name, "in": f"{w}x{h}", "provider": CUDA[:-17], "note": "network only, no flow",
                         "seconds": s, "fps": 1 / s})
            print(f"| {name} (network only, no flow alignment) | {w}x{h} | {w}x{h} | {CUDA[:-17]} | full | 1 | {s:.4f} | "
                  f"{1 / s:.2f} | {h * w / 1e6 / s:.1f} | - |", flush=True)
    rows += shape_rows(names, args.repeat)
    if args.memory:
        rows += memory_rows(names)
    after = gpu_info()
    if gpu and after:
        print(f"\nGPU memory in use at the end: {(gpu['free_bytes'] - after['free_bytes']) / 2**30:.1f} GiB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
