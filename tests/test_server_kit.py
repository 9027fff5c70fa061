"""Helpers for the server tests (no tests here): a real `vdiff serve` subprocess on a free 127.0.0.1 port with
every user folder inside tmp_path, and the stdlib client from resolve_scripts/."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "resolve_scripts"))

import vdiff_client  # noqa: E402


def server_env(base: Path, manifest: Path) -> dict[str, str]:
    env = dict(os.environ)
    for kind in ("config", "data", "log", "cache"):
        env[f"VDIFF_{kind.upper()}_DIR"] = str(base / kind)
    env["VDIFF_MANIFEST"] = str(manifest)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VDIFF_PORT", None)
    return env


def use_env(monkeypatch, env: dict[str, str]) -> None:
    """Point this process (the client, direct pipeline runs) at the same folders as the server."""
    for key in ("VDIFF_CONFIG_DIR", "VDIFF_DATA_DIR", "VDIFF_LOG_DIR", "VDIFF_CACHE_DIR", "VDIFF_MANIFEST"):
        monkeypatch.setenv(key, env[key])


def serve_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "vdiff_ofx.cli", "serve", "--port", "0", "--provider", "cpu", "--threads", "1",
            *extra]


class Server:
    """One `vdiff serve` process; ``start`` waits for server.json naming it and a healthy /health."""

    def __init__(self, base: Path, manifest: Path, *extra: str) -> None:
        self.base = base
        self.env = server_env(base, manifest)
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.starts = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    def start(self, timeout: float = 30.0) -> "Server":
        self.starts += 1
        out = open(self.base / f"serve-{self.starts}.out", "w")
        self.proc = subprocess.Popen(serve_command(*self.extra), cwd=ROOT, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: "
                                   f"{(self.base / f'serve-{self.starts}.out').read_text()}")
            try:
                info = json.loads((self.data / "server.json").read_text())
                if info["pid"] == self.proc.pid:
                    self.info = info
                    self.client().health()
                    return self
            except (OSError, ValueError, KeyError, vdiff_client.VdiffClientError):
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    @property
    def token(self) -> str:
        return (self.base / "config" / "token").read_text().strip()

    def client(self) -> vdiff_client.VdiffClient:
        return vdiff_client.VdiffClient(self.info["url"], self.token)

    def raw(self, method: str, path: str, body: bytes | None = None, token: str | None = "default",
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A request with exactly these bytes and headers: (status, parsed JSON)."""
        h = {"Content-Type": "application/json", **(headers or {})}
        if token == "default":
            token = self.token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.info["url"] + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", "serve", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
