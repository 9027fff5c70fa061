"""Client for the local vdiff job server (docs/server-api.md), standard library only.

It runs inside DaVinci Resolve's Python (3.10-3.14), which cannot import vdiff itself, so the user folders are
found the same way as vdiff_ofx/paths.py (reimplemented here) and the server is started on demand with the
command that `vdiff install-resolve` recorded in install.json beside this file.

    from vdiff_client import connect
    client = connect()                     # finds or starts the server, waits until healthy
    job = client.submit("/abs/in.mov", "/abs/out.mov", model="denoise", strength=15)
    done = client.wait(job["id"], on_progress=lambda j: print(j["frames_done"], j["frames_total"]))

Every failure raises VdiffClientError with one line a script can show the editor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

__all__ = ["VdiffClient", "VdiffClientError", "connect", "user_dir", "read_server_info"]

FINISHED = ("done", "failed", "cancelled")


class VdiffClientError(Exception):
    """A one-line reason the request failed; ``status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


def user_dir(kind: str) -> Path:
    """The user's vdiff folder of ``kind`` (config, data, cache, log); mirrors vdiff_ofx/paths.py."""
    override = os.environ.get("VDIFF_%s_DIR" % kind.upper())
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        var = "LOCALAPPDATA" if kind in ("cache", "log") else "APPDATA"
        return Path(os.environ.get(var, str(home / "AppData" / "Roaming"))) / "vdiff" / kind
    if sys.platform == "darwin":
        sub = {"config": "Application Support", "data": "Application Support", "cache": "Caches", "log": "Logs"}
        return home / "Library" / sub[kind] / "vdiff" / (kind if kind in ("config", "data") else "")
    env = {"config": "XDG_CONFIG_HOME", "data": "XDG_DATA_HOME", "cache": "XDG_CACHE_HOME", "log": "XDG_STATE_HOME"}
    default = {"config": ".config", "data": ".local/share", "cache": ".cache", "log": ".local/state"}
    root = Path(os.environ.get(env[kind]) or str(home / default[kind]))
    return root / "vdiff" / ("log" if kind == "log" else "")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
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
    try:  # an exited child not reaped yet (Linux) is not a server
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_server_info() -> Optional[Dict[str, Any]]:
    """server.json of a live server, or None (missing, unreadable, or left by a process that is gone)."""
    try:
        info = json.loads((user_dir("data") / "server.json").read_text(encoding="utf-8"))
        if not _pid_alive(int(info["pid"])):
            return None
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_token() -> str:
    path = user_dir("config") / "token"
    try:
        token = path.read_text(encoding="ascii").strip()
    except OSError:
        raise VdiffClientError("no vdiff token at %s; start the server once with `vdiff serve`" % path) from None
    if not token:
        raise VdiffClientError("the vdiff token file %s is empty" % path)
    return token


class VdiffClient:
    """Talks to one server at ``url`` with ``token``; methods return the server's JSON."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        if method == "POST" and data is None:
            data = b""
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = json.loads(exc.read() or b"{}").get("detail", "")
            except (ValueError, AttributeError, OSError):
                pass
            raise VdiffClientError("vdiff server: %s" % (detail or "HTTP %d %s" % (exc.code, exc.reason)),
                                   exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VdiffClientError("cannot reach the vdiff server at %s: %s" % (self.url, reason)) from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise VdiffClientError("the vdiff server sent a reply that is not JSON") from None

    def health(self) -> Dict[str, Any]:
        return self._call("GET", "/health")

    def models(self) -> List[Dict[str, Any]]:
        return self._call("GET", "/models")

    def submit(self, input: str, output: str, model: str = "denoise", **options: Any) -> Dict[str, Any]:
        """Queue a job (options as in the API: strength, start, end, codec, overwrite, ops...)."""
        body = {"input": input, "output": output, "model": model}
        body.update({k: v for k, v in options.items() if v is not None})
        return self._call("POST", "/jobs", body)

    def jobs(self, state: Optional[str] = None) -> List[Dict[str, Any]]:
        return self._call("GET", "/jobs" + ("?state=%s" % state if state else ""))

    def status(self, job_id: str) -> Dict[str, Any]:
        return self._call("GET", "/jobs/%s" % job_id)

    def cancel(self, job_id: str) -> Dict[str, Any]:
        return self._call("POST", "/jobs/%s/cancel" % job_id)

    def result(self, job_id: str) -> Dict[str, Any]:
        return self._call("GET", "/jobs/%s/result" % job_id)

    def shutdown(self) -> Dict[str, Any]:
        return self._call("POST", "/shutdown")

    def wait(self, job_id: str, timeout: Optional[float] = None, poll: float = 0.5,
             on_progress: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Poll until the job finishes; returns its result, raises VdiffClientError if it failed or was cancelled.

        A dropped connection while waiting (the server restarting) is retried until ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                job = self.status(job_id)
            except VdiffClientError as exc:
                if exc.status is not None:
                    raise
                job = None
            if job is not None:
                if on_progress is not None:
                    on_progress(job)
                if job["state"] == "done":
                    return self.result(job_id)
                if job["state"] == "failed":
                    raise VdiffClientError("job %s failed: %s" % (job_id, job.get("error") or "unknown error"))
                if job["state"] == "cancelled":
                    raise VdiffClientError("job %s was cancelled" % job_id)
            if deadline is not None and time.monotonic() > deadline:
                raise VdiffClientError("job %s is still %s after %.0fs" % (
                    job_id, job["state"] if job else "unreachable", timeout))
            time.sleep(poll)


def _serve_command(install_json: Optional[Path]) -> List[str]:
    path = install_json or Path(__file__).resolve().with_name("install.json")
    try:
        cmd = json.loads(path.read_text(encoding="utf-8"))["serve"]
    except (OSError, ValueError, KeyError, TypeError):
        raise VdiffClientError("the vdiff server is not running and %s does not say how to start it; run "
                               "`vdiff install-resolve` again or start `vdiff serve`" % path) from None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise VdiffClientError("%s: \"serve\" must be a list of strings" % path)
    return cmd


def _start_server(cmd: List[str]) -> None:
    kwargs: Dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                              "stderr": subprocess.DEVNULL, "close_fds": True}
    if sys.platform == "win32":
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True  # outlives Resolve's script and its signals
    try:
        subprocess.Popen(cmd, **kwargs)
    except OSError as exc:
        raise VdiffClientError("cannot start the vdiff server (%s): %s" % (" ".join(cmd), exc)) from None


def connect(start: bool = True, timeout: float = 60.0, install_json: Optional[Path] = None) -> VdiffClient:
    """A client for the running server, waiting up to ``timeout`` until it answers /health.

    With no server.json, the server is started from install.json when ``start`` (else VdiffClientError at once);
    a server that has published server.json but does not answer yet (still starting) is waited for."""
    deadline = time.monotonic() + timeout
    started = False
    last = "no server.json yet"
    while True:
        info = read_server_info()
        if info is not None:
            try:
                client = VdiffClient(info["url"], read_token())
                client.health()
                return client
            except VdiffClientError as exc:
                last = str(exc)
            except KeyError:
                last = "server.json has no url"
        if info is None and not started:
            if not start:
                raise VdiffClientError("the vdiff server is not running (start it with `vdiff serve`)")
            _start_server(_serve_command(install_json))
            started = True
        if time.monotonic() > deadline:
            raise VdiffClientError("the vdiff server did not become healthy within %.0fs (%s); see the log in %s"
                                   % (timeout, last, user_dir("log")))
        time.sleep(0.2)
