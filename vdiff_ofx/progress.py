"""Progress reports (frames, fps, ETA) and a terminal bar; adapters pass their own callback instead."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed: float
    stage: str = "enhance"  # or "analyse": `--model auto` / `--strength auto` / a temporal model's cuts, first

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.fps if self.fps > 0 else None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressFn = Callable[[Progress], None]


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class TerminalBar:
    """A one-line bar redrawn in place on a TTY (plain lines every few seconds otherwise, e.g. in logs)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.done >= p.total
        if not final and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        filled = int(self.width * p.fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        label = self.label if p.stage == "enhance" else f"{self.label} ({p.stage})"
        line = (f"{label} [{bar}] {p.done}/{p.total} frames  {p.fps:5.2f} fps  "
                f"ETA {_clock(p.eta)}  elapsed {_clock(p.elapsed)}")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
