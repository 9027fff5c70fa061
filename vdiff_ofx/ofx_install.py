"""`vdiff install-ofx`: build (with CMake, when needed) or locate the vdiff OpenFX bundle and place it in the
OFX plugin folder hosts scan (Resolve, Nuke, Vegas, Natron, ...), recording in the bundle how to start the
frame server and which models exist, so the plugin can start the server on demand and list models even
before it runs. --uninstall removes only our bundle."""

from __future__ import annotations

import argparse
import json
import os
import platform as _platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

from . import __version__
from .errors import VdiffError
from .paths import project_root

BUNDLE = "vdiff.ofx.bundle"
BINARY = "vdiff.ofx"
RECORD = "vdiff.json"
PLUGIN_ID = "org.vdiff.enhance"


def arch_folder(platform: str = sys.platform, machine: str | None = None) -> str:
    """The bundle's binary folder as the OpenFX spec names it."""
    machine = (machine or _platform.machine()).lower()
    if platform == "win32":
        return "Win64" if sys.maxsize > 2**32 else "Win32"
    if platform == "darwin":
        return "MacOS"
    if machine in ("aarch64", "arm64"):
        return "Linux-aarch64"
    return "Linux-x86-64" if sys.maxsize > 2**32 else "Linux-x86"


def plugin_root(platform: str = sys.platform, env: Mapping[str, str] = os.environ) -> Path:
    """Where hosts look: the first OFX_PLUGIN_PATH entry when set, else the OS's standard folder."""
    custom = [p for p in env.get("OFX_PLUGIN_PATH", "").split(os.pathsep) if p]
    if custom:
        return Path(custom[0])
    if platform == "win32":
        return Path(env.get("CommonProgramFiles", r"C:\Program Files\Common Files")) / "OFX" / "Plugins"
    if platform == "darwin":
        return Path("/Library/OFX/Plugins")
    return Path("/usr/OFX/Plugins")


def source_dir() -> Path:
    return project_root() / "ofx"


def default_build_dir() -> Path:
    return project_root() / "build" / "ofx"


def bundle_binary(bundle: Path) -> Path:
    return bundle / "Contents" / arch_folder() / BINARY


def _sources(src: Path) -> list[Path]:
    return [p for p in src.rglob("*") if p.is_file() and p.suffix in (".c", ".h", ".txt", ".in")]


def needs_build(build_dir: Path) -> bool:
    binary = bundle_binary(build_dir / BUNDLE)
    if not binary.is_file():
        return True
    newest = max((p.stat().st_mtime for p in _sources(source_dir())), default=0)
    return binary.stat().st_mtime < newest


def build(build_dir: Path | None = None, jobs: int = 2, quiet: bool = True) -> Path:
    """Configure and build with CMake; returns the bundle folder."""
    build_dir = build_dir or default_build_dir()
    if not (source_dir() / "CMakeLists.txt").is_file():
        raise VdiffError(f"the OFX plugin sources are not beside this vdiff ({source_dir()})")
    cmake = shutil.which("cmake")
    if not cmake:
        raise VdiffError("cmake is not installed; install it (and a C compiler) to build the OFX plugin")
    out = subprocess.DEVNULL if quiet else None
    try:
        subprocess.run([cmake, "-S", str(source_dir()), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, stdout=out)
        subprocess.run([cmake, "--build", str(build_dir), "--config", "Release", "-j", str(jobs)], check=True,
                       stdout=out)
    except subprocess.CalledProcessError as exc:
        raise VdiffError(f"building the OFX plugin failed ({exc}); run cmake in {build_dir} to see why") from None
    bundle = build_dir / BUNDLE
    if not bundle_binary(bundle).is_file():
        raise VdiffError(f"the build finished but {bundle_binary(bundle)} is missing")
    return bundle


def locate_or_build(build_dir: Path | None = None, rebuild: bool = False) -> Path:
    build_dir = build_dir or default_build_dir()
    if rebuild or needs_build(build_dir):
        return build(build_dir)
    return build_dir / BUNDLE


def _model_lines() -> list[str]:
    """name|task|scale|window|has_strength|min|max|default, read by the plugin when no server runs at
    describe time (so the Model menu is right from the first launch)."""
    try:
        from .engine.models import registry

        lines = []
        for s in registry().values():
            st = s.strength
            lines.append(f"{s.name}|{s.task}|{s.scale}|{s.temporal_window}|{1 if st else 0}|"
                         f"{st.min if st else 0}|{st.max if st else 0}|{st.default if st else 0}")
        return lines
    except VdiffError as exc:
        print(f"vdiff: warning: models not recorded ({exc})", file=sys.stderr)
        return []


def launch_record() -> dict:
    return {
        "plugin": PLUGIN_ID,
        "version": __version__,
        "installed": time.strftime("%Y-%m-%dT%H:%M:%S"),
        # how the plugin starts the frame server when none answers (detached, output to <config>/ofx-server.log)
        "server_argv": [sys.executable, "-m", "vdiff_ofx.server.frames"],
        "cwd": str(project_root()),  # so `-m vdiff_ofx` also works from a source checkout
        "models": _model_lines(),
    }


def write_record(bundle: Path) -> Path:
    res = bundle / "Contents" / "Resources"
    res.mkdir(parents=True, exist_ok=True)
    path = res / RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(launch_record(), indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def is_ours(bundle: Path) -> bool:
    try:
        return json.loads((bundle / "Contents" / "Resources" / RECORD).read_text(encoding="utf-8")).get("plugin") \
            == PLUGIN_ID
    except (OSError, ValueError, AttributeError):
        return False


def install(prefix: Path | None = None, dry_run: bool = False, build_dir: Path | None = None,
            rebuild: bool = False) -> Path:
    root = Path(prefix) if prefix else plugin_root()
    target = root / BUNDLE
    if dry_run:
        state = "build" if rebuild or needs_build(build_dir or default_build_dir()) else "use the built"
        print(f"would {state} {(build_dir or default_build_dir()) / BUNDLE}")
        print(f"would install it as {target} with {RECORD} (server: {sys.executable} -m vdiff_ofx.server.frames)")
        return target
    src = locate_or_build(build_dir, rebuild)
    if target.exists() and not is_ours(target):
        raise VdiffError(f"{target} exists and is not a vdiff install; move it away first")
    tmp = root / f".{BUNDLE}.{os.getpid()}.tmp"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(src, tmp)
        write_record(tmp)
        if target.exists():  # replace in place: hosts pick the new binary up on their next start
            shutil.rmtree(target)
        os.replace(tmp, target)
    except PermissionError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise VdiffError(f"no permission to write {root}: run as administrator/sudo, or use --prefix DIR "
                         "(and add DIR to OFX_PLUGIN_PATH)") from None
    print(f"installed {target}")
    return target


def uninstall(prefix: Path | None = None, dry_run: bool = False) -> bool:
    root = Path(prefix) if prefix else plugin_root()
    target = root / BUNDLE
    if not target.exists():
        print(f"nothing to remove: {target} does not exist")
        return False
    if not is_ours(target):
        raise VdiffError(f"{target} was not installed by vdiff (no {RECORD}); leaving it alone")
    if dry_run:
        print(f"would remove {target}")
        return True
    try:
        shutil.rmtree(target)
    except PermissionError:
        raise VdiffError(f"no permission to remove {target}: run as administrator/sudo") from None
    print(f"removed {target}")
    return True


def cmd_install_ofx(args: argparse.Namespace) -> int:
    prefix = Path(args.prefix) if args.prefix else None
    if args.uninstall:
        uninstall(prefix, args.dry_run)
    else:
        install(prefix, args.dry_run, Path(args.build_dir) if args.build_dir else None, args.rebuild)
    return 0


def register(subparsers, add_backend_args) -> None:  # noqa: ARG001 - the plugin needs no backend flags
    p = subparsers.add_parser("install-ofx", help="build and install the OpenFX plugin (Resolve, Nuke, Vegas, Natron)")
    p.add_argument("--uninstall", action="store_true", help="remove the vdiff bundle (only ours)")
    p.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    p.add_argument("--prefix", help="plugin folder to use instead of OFX_PLUGIN_PATH / the OS's standard one")
    p.add_argument("--build-dir", help=f"CMake build folder (default {default_build_dir()})")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if the built bundle is up to date")
    p.set_defaults(fn=cmd_install_ofx)
