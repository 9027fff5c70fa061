"""`vdiff install-resolve` (HOME/APPDATA in tmp) and the stdlib-only Resolve modules on other Pythons."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vdiff_ofx import resolve_install as ri

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "resolve_scripts"


def vdiff(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=60)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_scripts_root_per_os(tmp_path):
    h = Path("/u")
    assert ri.scripts_root(False, "linux", {}, h) == h / ".local/share/DaVinciResolve/Fusion/Scripts"
    assert ri.scripts_root(False, "darwin", {}, h) == \
        h / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts"
    assert ri.scripts_root(True, "darwin", {}, h) == \
        Path("/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts")
    win = ri.scripts_root(False, "win32", {"APPDATA": str(tmp_path)}, h)
    assert win == tmp_path / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    assert ri.scripts_root(True, "win32", {"PROGRAMDATA": str(tmp_path)}, h) == \
        tmp_path / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    assert ri.scripts_root(True, "linux", {}, h).parts[-2:] == ("Fusion", "Scripts")


def test_install_upgrade_uninstall(home):
    env = dict(os.environ)
    dest = home / ".local/share/DaVinciResolve/Fusion/Scripts/Edit/vdiff"
    dry = vdiff("install-resolve", "--dry-run", env=env)
    assert dry.returncode == 0 and "(dry run) copy vdiff_resolve.py" in dry.stdout and not dest.exists()
    r = vdiff("install-resolve", "--user", env=env)
    assert r.returncode == 0, r.stderr
    assert str(dest) in r.stdout
    info = json.loads((dest / "install.json").read_text())
    assert info["python"] == sys.executable and info["serve"] == [sys.executable, "-m", "vdiff_ofx.cli", "serve"]
    for name in ri.MENU_SCRIPTS + ("vdiff_resolve.py", "vdiff_client.py"):
        assert (dest / name).is_file(), name
    stamped = (dest / "vdiff Settings.py").read_text()
    assert f"_VDIFF_DIR = {str(dest)!r}" in stamped
    # the editor's own script and a file from an older vdiff: reinstall removes only ours that are gone
    (dest / "my own.py").write_text("print('mine')")
    info["files"].append("vdiff Old Tool.py")
    (dest / "install.json").write_text(json.dumps(info))
    (dest / "vdiff Old Tool.py").write_text("")
    r = vdiff("install-resolve", env=env)
    assert r.returncode == 0 and "upgrade" in r.stdout and "remove old vdiff Old Tool.py" in r.stdout
    assert not (dest / "vdiff Old Tool.py").exists() and (dest / "my own.py").exists()
    (dest / "__pycache__").mkdir()
    (dest / "__pycache__" / "vdiff_resolve.cpython-312.pyc").write_bytes(b"")
    r = vdiff("install-resolve", "--uninstall", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["my own.py"]
    (dest / "my own.py").unlink()
    assert "nothing of vdiff's" in vdiff("install-resolve", "--uninstall", env=env).stdout


def test_windows_user_folder_from_appdata(tmp_path, monkeypatch):
    monkeypatch.setenv("APPDATA", str(tmp_path))
    dest = ri.scripts_root(False, "win32") / ri.CATEGORY / ri.SUBFOLDER
    ri.install(dest)
    assert (tmp_path / "Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Edit/vdiff/install.json").is_file()


def test_system_install_without_rights_is_one_line(tmp_path, home):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        r = vdiff("install-resolve", "--target", str(locked / "Edit" / "vdiff"), env=dict(os.environ))
        assert r.returncode != 0 and r.stderr.count("\n") == 1 and "cannot write" in r.stderr
    finally:
        locked.chmod(0o700)


def _pythons() -> list[str]:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("pyenv") else ""
    found = []
    for want in ("3.10", "3.13"):
        cands = sorted(Path(root, "versions").glob(f"{want}.*/bin/python")) if root else []
        if cands:
            found.append(str(cands[-1]))
    return found


@pytest.mark.parametrize("python", _pythons() or [pytest.param("", marks=pytest.mark.skip("no pyenv Pythons"))])
def test_stdlib_modules_on_resolve_pythons(python, tmp_path):
    """Resolve runs scripts on a system Python 3.10-3.12 (3.14 bundled from 21.1): compile and import there."""
    shutil.copytree(SCRIPTS, tmp_path / "s", ignore=shutil.ignore_patterns("__pycache__"))
    files = [str(p) for p in (tmp_path / "s").glob("*.py")]
    r = subprocess.run([python, "-I", "-m", "py_compile", *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import vdiff_resolve as v, vdiff_client; "
            "s = v.load_settings(); assert s['codec'] == 'prores_hq' and s['handles'] == 12; "
            "import runpy; runpy.run_path(sys.argv[1] + '/vdiff Settings.py', run_name='__main__')")
    r = subprocess.run([python, "-I", "-c", code, str(tmp_path / "s")], capture_output=True, text=True,
                       env={"VDIFF_CONFIG_DIR": str(tmp_path / "c"), "VDIFF_DATA_DIR": str(tmp_path / "d"),
                            "HOME": str(tmp_path)}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "cannot reach Resolve's scripting API" in r.stdout and "server: not running" in r.stdout
