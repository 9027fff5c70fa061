"""A stand-in for DaVinci Resolve's scripting objects, following Blackmagic's README: same method names, argument
shapes and return values (False/None/empty on failure), None for unknown names, version differences through a
profile (see profiles.py). Media pool items are backed by real clip files; the render queue writes real files.

Test set-up that the real API cannot do (speed changes, generators, selections) goes through ``App``'s helpers,
never through the scripting objects the scripts see.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

from .app import Bmd, Resolve, Window
from .pool import MediaPoolItem
from .profiles import PROFILES, Profile, profile
from .project import Project
from .timeline import Timeline, TimelineItem, Track

MODULES = str(Path(__file__).with_name("modules"))


class App:
    """One running "Resolve" with a project open; ``scope()`` gives the globals a menu script runs with."""

    def __init__(self, version: str = "21.0.4", studio: bool = True, missing: set[str] | frozenset = frozenset(),
                 ui_driver: Callable[[Window], None] | None = None) -> None:
        self.profile: Profile = profile(version, studio, missing)
        self.resolve = Resolve(self.profile)
        self.project: Project = self.resolve.pm.CreateProject("vdiff test")
        self.bmd = Bmd(self.resolve, ui_driver)

    @property
    def fusion(self):
        return self.resolve.fusion

    def scope(self) -> dict[str, Any]:
        """Globals Resolve gives a script started from the Workspace > Scripts menu."""
        return {"resolve": self.resolve, "fusion": self.fusion, "bmd": self.bmd, "__name__": "__main__"}

    def import_clip(self, path: Path | str) -> MediaPoolItem:
        items = self.project.pool.ImportMedia([str(path)])
        assert items, f"standin could not import {path}"
        return items[0]

    def timeline(self, name: str, fps: str = "25", video_tracks: int = 1, audio_tracks: int = 1) -> Timeline:
        self.project.settings["timelineFrameRate"] = fps
        tl = self.project._new_timeline(name)
        assert tl is not None
        tl.tracks["video"] = [Track(f"Video {i + 1}") for i in range(video_tracks)]
        tl.tracks["audio"] = [Track(f"Audio {i + 1}") for i in range(audio_tracks)]
        return tl

    def place(self, tl: Timeline, mpi: MediaPoolItem | None, src_start: int, src_end: int, offset: int,
              track: int = 1, speed: float = 1.0, kind: str = "clip", name: str = "") -> TimelineItem:
        """Put source frames [src_start, src_end) of ``mpi`` at timeline offset ``offset`` (from the start)."""
        if mpi is not None and mpi.info is not None:
            dur = round((src_end - src_start) * tl._fps() / mpi.info.fps / __import__("fractions").Fraction(
                speed).limit_denominator(1000))
        else:
            dur = src_end - src_start
        item = TimelineItem(self.profile, tl, kind, mpi, tl.start + offset, dur, src_start, speed, name)
        tl.tracks["video"][track - 1].items.append(item)
        tl.tracks["video"][track - 1].items.sort(key=lambda it: it.start)
        return item


def install_module(app: App) -> None:
    """Make ``import DaVinciResolveScript`` find the fake module, answering scriptapp("Resolve") with ``app``."""
    if MODULES not in sys.path:
        sys.path.insert(0, MODULES)
    import DaVinciResolveScript  # type: ignore[import-not-found]

    DaVinciResolveScript._APP = app.resolve
    os.environ.setdefault("RESOLVE_SCRIPT_API", MODULES)


__all__ = ["App", "PROFILES", "install_module", "Timeline", "TimelineItem", "MediaPoolItem"]
