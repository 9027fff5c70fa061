"""Per-user folders (config, data, logs, cache) for each OS, so nothing is written next to the code."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _base(kind: str) -> Path:
    override = os.environ.get(f"VDIFF_{kind.upper()}_DIR")
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA" if kind in ("cache", "log") else "APPDATA", home / "AppData" / "Roaming"))
        return root / "vdiff" / kind
    if sys.platform == "darwin":
        sub = {"config": "Application Support", "data": "Application Support", "cache": "Caches", "log": "Logs"}[kind]
        return home / "Library" / sub / "vdiff" / (kind if kind in ("config", "data") else "")
    env = {"config": "XDG_CONFIG_HOME", "data": "XDG_DATA_HOME", "cache": "XDG_CACHE_HOME", "log": "XDG_STATE_HOME"}[kind]
    default = {"config": ".config", "data": ".local/share", "cache": ".cache", "log": ".local/state"}[kind]
    root = Path(os.environ.get(env) or home / default)
    return root / "vdiff" / ("log" if kind == "log" else "")


def user_dir(kind: str, create: bool = True) -> Path:
    """Return (and by default create) the user's vdiff folder of ``kind``: config, data, cache or log."""
    path = _base(kind)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def project_root() -> Path:
    """The repository root holding ``manifest.yaml`` and ``models/`` (the package's parent folder)."""
    return Path(__file__).resolve().parent.parent
