"""`vdiff install-resolve`: copy the vdiff scripts into Resolve's Scripts folder for this OS (Edit page, a "vdiff"
submenu), with install.json recording the Python and the command that starts the server, so scripts running on
Resolve's own Python can start `vdiff serve` on demand. Reinstalling upgrades in place; --uninstall removes only
the files we put there."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Mapping

from . import __version__
from .errors import VdiffError
from .paths import project_root

MENU_SCRIPTS = ("vdiff Enhance Selected Clips.py", "vdiff Enhance Timeline.py", "vdiff Batch Render Timelines.py",
                "vdiff Settings.py")
SUPPORT = ("vdiff_resolve.py", "vdiff_client.py")
INSTALL_JSON = "install.json"
CATEGORY = "Edit"     # Workspace > Scripts lists Utility everywhere, Edit/Color/Deliver on their pages
SUBFOLDER = "vdiff"   # Resolve scans the category's subfolders and shows each as a submenu
_STAMP = "_VDIFF_DIR = None"


def scripts_root(system: bool = False, platform: str = sys.platform, env: Mapping[str, str] = os.environ,
                 home: Path | None = None) -> Path:
    """Resolve's Fusion/Scripts folder, per user or for all users, as Blackmagic's scripting README lists them."""
    home = home or Path.home()
    if platform == "win32":
        if system:
            return Path(env.get("PROGRAMDATA", r"C:\ProgramData")) / "Blackmagic Design" / "DaVinci Resolve" / \
                "Fusion" / "Scripts"
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        return appdata / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    if platform == "darwin":
        base = Path("/Library") if system else home / "Library"
        return base / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    if system:
        opt, alt = Path("/opt/resolve"), Path("/home/resolve")
        return (alt if alt.is_dir() and not opt.is_dir() else opt) / "Fusion" / "Scripts"
    return home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"


def target_dir(system: bool = False) -> Path:
    return scripts_root(system) / CATEGORY / SUBFOLDER


def source_dir() -> Path:
    src = project_root() / "resolve_scripts"
    if not (src / "vdiff_resolve.py").is_file():
        raise VdiffError(f"the Resolve scripts are not beside this vdiff ({src}); reinstall vdiff from its source")
    return src


def serve_command() -> list[str]:
    return [sys.executable, "-m", "vdiff_ofx.cli", "serve"]


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.vdiff-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _previous(dest: Path) -> dict:
    try:
        info = json.loads((dest / INSTALL_JSON).read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def install(dest: Path, dry_run: bool = False) -> list[str]:
    """Copy scripts + support modules into ``dest`` and write install.json; returns what was (or would be) done."""
    src = source_dir()
    names = [n for n in MENU_SCRIPTS + SUPPORT if (src / n).is_file()]
    missing = [n for n in MENU_SCRIPTS + ("vdiff_resolve.py",) if n not in names]
    if missing:
        raise VdiffError(f"missing from {src}: {', '.join(missing)}")
    old = _previous(dest)
    actions = [f"{'upgrade' if old else 'install'} vdiff {__version__} Resolve scripts in {dest}"]
    stale = [n for n in old.get("files", []) if n not in names and n != INSTALL_JSON]
    actions += [f"copy {n}" for n in names] + [f"remove old {n}" for n in stale] + [f"write {INSTALL_JSON}"]
    if dry_run:
        return actions
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for n in names:
            data = (src / n).read_bytes()
            if n in MENU_SCRIPTS:
                data = data.replace(_STAMP.encode(), f"_VDIFF_DIR = {str(dest)!r}".encode(), 1)
            _write(dest / n, data)
        for n in stale:
            (dest / n).unlink(missing_ok=True)
        info = {"python": sys.executable, "serve": serve_command(), "version": __version__,
                "installed": time.time(), "files": names}
        _write(dest / INSTALL_JSON, json.dumps(info, indent=2).encode())
    except PermissionError as exc:
        raise VdiffError(f"cannot write to {exc.filename or dest}: run as an administrator for --system, "
                         "or install with --user") from None
    return actions


def uninstall(dest: Path, dry_run: bool = False) -> list[str]:
    """Remove only our files (those install.json lists, and our known names), then the folder if left empty."""
    old = _previous(dest)
    ours = set(old.get("files", [])) | set(MENU_SCRIPTS) | set(SUPPORT)
    present = sorted(n for n in ours if (dest / n).is_file()) + ([INSTALL_JSON] if (dest / INSTALL_JSON).is_file()
                                                                 else [])
    cache = dest / "__pycache__"
    pyc = sorted(p.name for p in cache.glob("*.pyc") if p.name.split(".")[0] in {Path(n).stem for n in SUPPORT}) \
        if cache.is_dir() else []
    if not present and not pyc:
        return [f"nothing of vdiff's in {dest}"]
    actions = [f"remove {n}" for n in present + [f"__pycache__/{p}" for p in pyc]]
    if dry_run:
        return actions
    try:
        for n in present:
            (dest / n).unlink(missing_ok=True)
        for p in pyc:
            (cache / p).unlink(missing_ok=True)
        for folder in (cache, dest):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                actions.append(f"remove empty folder {folder}")
    except PermissionError as exc:
        raise VdiffError(f"cannot remove {exc.filename or dest}: run as an administrator for --system") from None
    return actions


def cmd_install_resolve(args: argparse.Namespace) -> int:
    dest = Path(args.target) if args.target else target_dir(args.system)
    actions = (uninstall if args.uninstall else install)(dest, args.dry_run)
    for a in actions:
        print(("(dry run) " if args.dry_run else "") + a)
    if not args.uninstall and not args.dry_run:
        print(f"done: in Resolve open Workspace > Scripts > {CATEGORY} > {SUBFOLDER} (restart Resolve if the menu "
              "does not show it yet)")
    return 0


def register(subparsers: argparse._SubParsersAction, add_backend_args) -> None:
    p = subparsers.add_parser("install-resolve", help="install the vdiff scripts into DaVinci Resolve's Scripts menu")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", action="store_true", help="for this user (default)")
    who.add_argument("--system", action="store_true", help="for all users (needs administrator rights)")
    p.add_argument("--uninstall", action="store_true", help="remove the vdiff scripts (only ours)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.add_argument("--target", help="install into this folder instead of Resolve's (for testing or custom setups)")
    p.set_defaults(fn=cmd_install_resolve)
