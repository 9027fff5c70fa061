"""The model registry: manifest.yaml entries, checksums and each model's input contract.

Only files listed in a manifest with a matching sha256 are loaded. The project's manifest ships with the code;
models a user adds with ``vdiff models add`` go to a manifest in the user's config folder after their inputs and
outputs have been checked against the contract.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import ModelError
from ..paths import project_root, user_dir

TASKS = ("denoise", "deblock", "upscale", "sharpen", "restore", "custom")


@dataclass(frozen=True)
class Strength:
    """A model's strength knob: the graph input it feeds, its range in user units, and the graph value per unit.

    Denoisers take sigma on 0-255 and read sigma/255 (the default); upscale2x takes detail in % and reads it /100.
    """

    input: str | None = "sigma"  # None: no graph input, the knob is the blend alone (deblock's amount %)
    default: float = 15.0
    min: float = 0.0
    max: float = 50.0
    unit: str = "sigma on 0-255"
    per_unit: float = 1 / 255
    # (strength, share) knots: the output is input + share x (network - input), the share interpolated linearly.
    # Why: a small denoiser redraws fine texture even at strength 0 (`denoise` gave clean held-out photos back at
    # 37.5 dB); the share fitted on training patches makes low strengths gentle and 0 an exact identity.
    blend: tuple[tuple[float, float], ...] = ()

    def share(self, value: float) -> float:
        """How much of the network's change is kept at strength ``value`` (1 without a blend table)."""
        if not self.blend:
            return 1.0
        at, share = zip(*self.blend)
        return float(np.interp(value, at, share))

    def keep(self, x: np.ndarray, y: np.ndarray, value: float | None) -> np.ndarray:
        """``y`` (the network's output for input ``x``) with only the blend's share of its change kept at strength
        ``value`` (None: the default); ``y`` itself where the share is 1."""
        share = self.share(self.default if value is None else value)
        if share >= 1.0:
            return y
        return (x + np.float32(share) * (y - x)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry: what the file is, how to feed it, and the checksum that lets it be loaded."""

    name: str
    file: Path
    sha256: str
    task: str = "custom"
    scale: int = 1
    channels: int = 3
    temporal_window: int = 1
    size_multiple: int = 1
    input_range: tuple[float, float] = (0.0, 1.0)
    strength: Strength | None = None
    description: str = ""
    params: int | None = None
    receptive_field: int = 16
    source: str = "project"
    extra: dict[str, Any] = field(default_factory=dict)

    def verify(self) -> None:
        """Raise ModelError unless the file exists and its sha256 matches the manifest."""
        if not self.file.is_file():
            raise ModelError(f"model '{self.name}': file {self.file} is missing")
        digest = sha256_file(self.file)
        if digest != self.sha256.lower():
            raise ModelError(
                f"model '{self.name}': checksum mismatch for {self.file} (expected {self.sha256[:12]}..., "
                f"got {digest[:12]}...); the file is damaged or was replaced, refusing to load it"
            )


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in chunks so large models do not fill memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def project_manifest() -> Path:
    return Path(os.environ.get("VDIFF_MANIFEST") or project_root() / "manifest.yaml")


def user_manifest() -> Path:
    return user_dir("config") / "models.yaml"


_KNOWN = {f for f in ModelSpec.__dataclass_fields__} - {"source", "extra"}


def _spec_from_entry(entry: dict[str, Any], base: Path, source: str) -> ModelSpec:
    try:
        name = str(entry["name"])
        file = Path(entry["file"])
        sha = str(entry["sha256"])
    except KeyError as exc:
        raise ModelError(f"manifest {base}: an entry lacks the required key {exc}") from None
    if not file.is_absolute():
        file = base / file
    strength = entry.get("strength")
    kwargs = {k: v for k, v in entry.items() if k in _KNOWN and k not in ("name", "file", "sha256", "strength")}
    if "input_range" in kwargs:
        kwargs["input_range"] = tuple(float(v) for v in kwargs["input_range"])
    for key in ("scale", "channels", "temporal_window", "size_multiple", "receptive_field"):
        if key in kwargs:
            kwargs[key] = int(kwargs[key])
    extra = {k: v for k, v in entry.items() if k not in _KNOWN}
    spec = ModelSpec(
        name=name, file=file, sha256=sha, strength=_strength(name, strength) if strength else None,
        source=source, extra=extra, **kwargs,
    )
    if spec.scale < 1 or spec.temporal_window < 1 or spec.temporal_window % 2 == 0 or spec.size_multiple < 1:
        raise ModelError(f"model '{name}': scale, size_multiple must be >= 1 and temporal_window odd")
    if spec.strength and spec.strength.blend and spec.scale != 1:
        raise ModelError(f"model '{name}': strength.blend needs a model at scale 1 (input and output must line up)")
    return spec


def _strength(name: str, entry: dict[str, Any]) -> Strength:
    """A manifest `strength:` mapping; its `blend` is a list of [strength, share] pairs, strengths ascending."""
    entry = dict(entry)
    try:
        blend = tuple((float(a), float(w)) for a, w in entry.pop("blend", ()))
    except (TypeError, ValueError):
        raise ModelError(f"model '{name}': strength.blend must be a list of [strength, share] pairs") from None
    at = [a for a, _ in blend]
    if blend and (len(blend) < 2 or at != sorted(set(at)) or not all(0.0 <= w <= 1.0 for _, w in blend)):
        raise ModelError(f"model '{name}': strength.blend needs 2+ pairs, strengths ascending, shares in 0..1")
    entry["input"] = entry.get("input", "sigma") or None
    if entry["input"] is None and not blend:
        raise ModelError(f"model '{name}': a strength with no graph input needs a blend (it would do nothing)")
    try:
        return Strength(**entry, blend=blend)
    except TypeError as exc:
        raise ModelError(f"model '{name}': bad strength entry ({exc})") from None


def _read_manifest(path: Path, source: str) -> list[ModelSpec]:
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"manifest {path} is not valid YAML: {exc}") from None
    return [_spec_from_entry(e, path.parent, source) for e in (data.get("models") or [])]


def registry() -> dict[str, ModelSpec]:
    """All known models by name: the project's, then the user's (a user entry may not shadow a project name)."""
    models: dict[str, ModelSpec] = {}
    for spec in _read_manifest(project_manifest(), "project"):
        models[spec.name] = spec
    for spec in _read_manifest(user_manifest(), "user"):
        models.setdefault(spec.name, spec)
    return models


def get_model(name_or_path: str) -> ModelSpec:
    """Look a model up by name; a path is accepted only if that exact file is listed with its checksum."""
    models = registry()
    if name_or_path in models:
        return models[name_or_path]
    candidate = Path(name_or_path)
    if candidate.suffix == ".onnx":
        resolved = candidate.resolve()
        for spec in models.values():
            if spec.file.resolve() == resolved:
                return spec
        raise ModelError(f"{name_or_path} is not a registered model; add it first with `vdiff models add {name_or_path}`")
    known = ", ".join(sorted(models)) or "none"
    raise ModelError(f"unknown model '{name_or_path}' (known: {known})")


def inspect_onnx(path: Path) -> dict[str, Any]:
    """Check a user's ONNX file against the input contract and infer scale/window; ModelError if it does not fit."""
    import numpy as np
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several exception types for bad files
        raise ModelError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
    inputs = {i.name: i for i in sess.get_inputs()}
    outputs = sess.get_outputs()
    image = inputs.get("input") or next(iter(inputs.values()))
    if len(image.shape) != 4:
        raise ModelError(f"{path}: the image input must be NCHW (rank 4), got shape {image.shape}")
    c_in = image.shape[1]
    if not isinstance(c_in, int) or c_in % 3 != 0:
        raise ModelError(f"{path}: the image input needs 3*T channels (RGB frames), got {c_in}")
    if len(outputs) < 1 or len(outputs[0].shape) != 4:
        raise ModelError(f"{path}: the output must be NCHW (rank 4)")
    feeds: dict[str, Any] = {}
    probe = 32
    for name, inp in inputs.items():
        if inp is image:
            feeds[name] = np.full((1, c_in, probe, probe), 0.5, np.float32)
        elif len(inp.shape) == 4:
            feeds[name] = np.full((1, 1, 1, 1), 15 / 255, np.float32)
        else:
            raise ModelError(f"{path}: unsupported extra input '{name}' with shape {inp.shape}")
    try:
        out = sess.run(None, feeds)[0]
    except Exception as exc:
        raise ModelError(f"{path}: a 32x32 test run failed ({str(exc).splitlines()[0]}); "
                         "the model must accept dynamic H and W") from None
    if out.shape[1] != 3 or out.shape[2] % probe or out.shape[2] != out.shape[3]:
        raise ModelError(f"{path}: output shape {out.shape} for a 32x32 input is not N x 3 x (32*s) x (32*s)")
    extra_inputs = [n for n in inputs if inputs[n] is not image]
    return {"channels": 3, "temporal_window": c_in // 3, "scale": out.shape[2] // probe,
            "strength_input": extra_inputs[0] if extra_inputs else None,
            "image_input": image.name}


def add_user_model(path: Path, name: str, task: str = "custom", description: str = "") -> ModelSpec:
    """Register a user's ONNX file after checking it; records its checksum so later edits to the file are caught."""
    path = path.resolve()
    if not path.is_file():
        raise ModelError(f"{path} does not exist")
    if name in registry():
        raise ModelError(f"a model named '{name}' already exists; pick another --name")
    if task not in TASKS:
        raise ModelError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")
    info = inspect_onnx(path)
    entry: dict[str, Any] = {
        "name": name, "file": str(path), "sha256": sha256_file(path), "task": task,
        "scale": info["scale"], "channels": 3, "temporal_window": info["temporal_window"],
        "size_multiple": 1, "input_range": [0.0, 1.0], "description": description or f"user model {path.name}",
    }
    if info["strength_input"]:
        entry["strength"] = asdict(Strength(input=info["strength_input"]))
    manifest = user_manifest()
    data = (yaml.safe_load(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None) or {}
    data.setdefault("version", 1)
    data.setdefault("models", []).append(entry)
    tmp = manifest.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    os.replace(tmp, manifest)
    return _spec_from_entry(entry, manifest.parent, "user")


def remove_user_model(name: str) -> bool:
    """Forget a user-added model (the file itself is left alone)."""
    manifest = user_manifest()
    if not manifest.is_file():
        return False
    data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    before = len(data.get("models") or [])
    data["models"] = [e for e in (data.get("models") or []) if e.get("name") != name]
    manifest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return len(data["models"]) < before
