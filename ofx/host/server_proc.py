"""Start and stop a real vdiff frame server in its own process, for the OFX tests and benchmark: the plugin
must talk to a separate process, exactly as in a host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class FrameServerProcess:
    def __init__(self, config_dir: Path, env: dict[str, str], threads: int = 0) -> None:
        self.config_dir = Path(config_dir)
        self.env = env
        self.threads = threads
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "FrameServerProcess":
        addr = self.config_dir / "frames.addr"
        addr.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "vdiff_ofx.server.frames", "--provider", "cpu"]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if addr.is_file() and addr.read_text().strip():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"frame server exited: {self.proc.stderr.read().decode(errors='replace')}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("frame server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def processes_with_env(key: str, value: str) -> list[int]:
    """Pids (Linux /proc) whose environment has key=value: finds servers the plugin started detached."""
    want = f"{key}={value}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if want in (d / "environ").read_bytes().split(b"\0"):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids
