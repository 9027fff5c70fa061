"""Free memory on the device a model runs on, so the tile size can be chosen without the user guessing."""

from __future__ import annotations

import os
import shutil
import subprocess


def free_host_bytes() -> int:
    """Available RAM (Linux /proc/meminfo; a conservative 4 GiB elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if hasattr(os, "sysconf"):
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            pass
    return 4 << 30


def gpu_info(device_id: int = 0) -> dict[str, object] | None:
    """Name, total and free memory of an NVIDIA GPU via nvidia-smi, or None where there is none."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, f"--id={device_id}", "--query-gpu=name,memory.total,memory.free,driver_version",
             "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    name, total, free, driver = [s.strip() for s in out.splitlines()[0].split(",")]
    return {"name": name, "total_bytes": int(float(total)) << 20, "free_bytes": int(float(free)) << 20,
            "driver": driver}
