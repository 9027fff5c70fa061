"""Version profiles: which documented methods and behaviours each Resolve release has.

Boundaries given by Blackmagic's README and release notes: Timeline.GetSelectedClips 21.0.4, MediaPool
.GetSelectedClips 19.0.2, AddTrack(type, {"index"}) 19.0, fusion.UIManager None in the free version from 19.1,
scripting Studio-only from 21.1 (IsStudio), AppendToTimeline endFrame measured exclusive on 21.x (inclusive in
the README example before). Boundaries the docs do not date are marked "best known" below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Version = tuple[int, int, int]

# "Class.Method" -> first version that has it.
SINCE: dict[str, Version] = {
    "Timeline.GetSelectedClips": (21, 0, 4),
    "MediaPool.GetSelectedClips": (19, 0, 2),
    "MediaPool.SetSelectedClip": (19, 0, 2),
    "Resolve.IsStudio": (21, 1, 0),
    "TimelineItem.GetSourceStartFrame": (18, 5, 0),   # absent from the 18.1 README
    "TimelineItem.GetSourceEndFrame": (18, 5, 0),
    "TimelineItem.GetTrackTypeAndIndex": (19, 0, 0),  # best known
    "Timeline.GetMarkInOut": (19, 0, 0),              # best known
    "Timeline.SetMarkInOut": (19, 0, 0),
}


@dataclass(frozen=True)
class Profile:
    """One Resolve build: version, edition, bundled Python (informational) and optional missing methods."""

    version: Version
    studio: bool = True
    python: str = "3.11"
    missing: frozenset[str] = field(default_factory=frozenset)  # "Class.Method" removed (hypothetical builds)

    def has(self, cls: str, method: str) -> bool:
        key = f"{cls}.{method}"
        if key in self.missing:
            return False
        return self.version >= SINCE.get(key, (0, 0, 0))

    @property
    def scripting(self) -> bool:
        """From 21.1 the free version answers only product/version queries."""
        return self.studio or self.version < (21, 1, 0)

    @property
    def ui_manager(self) -> bool:
        return self.studio or self.version < (19, 1, 0)

    @property
    def end_exclusive(self) -> bool:
        """AppendToTimeline's clipInfo endFrame: inclusive in the README example, exclusive on 21.x."""
        return self.version >= (21, 0, 0)

    @property
    def add_track_index(self) -> bool:
        return self.version >= (19, 0, 0)

    @property
    def version_string(self) -> str:
        return ".".join(map(str, self.version)) + ".0010"


PROFILES: dict[str, Version] = {
    "18.1": (18, 1, 4), "18.6": (18, 6, 6), "19.0": (19, 0, 0), "19.1": (19, 1, 4), "20.x": (20, 2, 3),
    "21.0.4": (21, 0, 4), "21.1": (21, 1, 0),
}


def profile(name: str, studio: bool = True, missing: set[str] | frozenset[str] = frozenset()) -> Profile:
    """Profile for a release name in PROFILES (e.g. "19.1", "21.0.4")."""
    v = PROFILES[name]
    py = "3.14" if v >= (21, 1, 0) else "3.10" if v < (19, 0, 0) else "3.12"
    return Profile(v, studio, py, frozenset(missing))
