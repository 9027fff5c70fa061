"""server.json: how clients find the running server, and how a second start notices it (or a stale file left by
a crash, detected by its pid)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..paths import user_dir

SERVER_FILE = "server.json"
DEFAULT_PORT = 17345


def server_file() -> Path:
    return user_dir("data") / SERVER_FILE


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs (another user's counts as alive; an unreaped zombie does not)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """An exited child its parent has not reaped yet (e.g. a server started by a script that never waits)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def write_info(port: int) -> dict[str, Any]:
    """Publish this process as the server (atomic replace so clients never read half a file)."""
    info = {"pid": os.getpid(), "port": port, "url": f"http://127.0.0.1:{port}", "started": time.time(),
            "version": __version__, "python": sys.version.split()[0], "exe": sys.executable}
    path = server_file()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return info


def read_info() -> dict[str, Any] | None:
    """The live server's info, or None; a file whose pid is gone is stale and removed."""
    path = server_file()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid):
        remove_info(pid)
        return None
    return info


def remove_info(pid: int | None = None) -> None:
    """Remove server.json if it belongs to ``pid`` (default: this process), never a newer server's."""
    path = server_file()
    pid = os.getpid() if pid is None else pid
    try:
        if int(json.loads(path.read_text(encoding="utf-8")).get("pid", -1)) == pid:
            path.unlink()
    except (OSError, ValueError, TypeError):
        pass
