"""`vdiff doctor`: what this machine can run, and which provider a model actually lands on."""

from __future__ import annotations

import platform
import sys

from .engine.memory import gpu_info
from .engine.providers import CHAIN, Backend, available
from .errors import VdiffError


def _versions() -> list[tuple[str, str]]:
    rows = [("python", sys.version.split()[0]), ("platform", platform.platform())]
    for mod in ("onnxruntime", "numpy", "av", "cv2", "yaml"):
        try:
            m = __import__(mod)
            rows.append((mod, getattr(m, "__version__", "?")))
        except Exception as exc:  # a broken optional install should be reported, not crash doctor
            rows.append((mod, f"MISSING ({exc})"))
    try:
        import av

        rows.append(("ffmpeg (PyAV)", ".".join(map(str, av.ffmpeg_version_info)) if isinstance(
            av.ffmpeg_version_info, tuple) else str(av.ffmpeg_version_info)))
    except Exception:
        pass
    return rows


def report(model: str = "denoise", backend: Backend | None = None) -> tuple[str, bool]:
    """Text report and whether the model loads at all (on some provider)."""
    from .engine.models import get_model
    from .engine.session import ModelSession

    lines = ["vdiff doctor", ""]
    lines += [f"  {k:<15} {v}" for k, v in _versions()]
    offered = available()
    lines += ["", "providers (offered by this onnxruntime build -> loads a model?):"]
    ok = False
    try:
        spec = get_model(model)
    except VdiffError as exc:
        lines.append(f"  model '{model}': {exc}")
        spec = None
    for name in CHAIN:
        if name not in offered:
            lines.append(f"  {name:<28} not in this build")
            continue
        if spec is None:
            lines.append(f"  {name:<28} offered")
            continue
        try:
            sess = ModelSession(spec, Backend(providers=[name], device_id=(backend or Backend()).device_id))
            actual = sess.provider
            status = "loads" if actual == name else f"falls back to {actual} (GPU library missing or failed)"
            ok = True
        except VdiffError as exc:
            status = f"fails: {exc}"
        lines.append(f"  {name:<28} {status}")
    if spec is not None:
        try:
            sess = ModelSession(spec, backend or Backend())
            lines += ["", f"model '{spec.name}' runs on: {sess.provider} (loaded chain: {', '.join(sess.providers)})"]
        except VdiffError as exc:
            lines += ["", f"model '{spec.name}': {exc}"]
            ok = False
    gpu = gpu_info((backend or Backend()).device_id)
    if gpu:
        lines.append(f"GPU: {gpu['name']}, {int(gpu['total_bytes']) >> 20} MiB total, "
                     f"{int(gpu['free_bytes']) >> 20} MiB free, driver {gpu['driver']}")
    else:
        lines.append("GPU: none found (nvidia-smi absent); CPU inference is used")
    return "\n".join(lines), ok
