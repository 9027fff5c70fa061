"""Timeline and TimelineItem: tracks of items at absolute record frames (timeline start is 01:00:00:00)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .base import ScriptObject, new_id
from .media import frames_to_tc, tc_to_frames
from .pool import MediaPoolItem
from .profiles import Profile

if TYPE_CHECKING:
    from .project import Project

ITEM_PROPERTIES = {"Pan": 0.0, "Tilt": 0.0, "ZoomX": 1.0, "ZoomY": 1.0, "Opacity": 100.0, "RetimeProcess": 0,
                   "MotionEstimation": 0, "Scaling": 0, "CompositeMode": 0}


class Track:
    def __init__(self, name: str) -> None:
        self.name, self.items, self.enabled, self.locked = name, [], True, False


class TimelineItem(ScriptObject):
    """``duration`` and ``start`` are timeline frames; ``src_start`` is a source (media) frame; ``speed`` 1.0 is
    100 %. ``mpi`` None for generators, titles and Fusion clips."""

    def __init__(self, profile: Profile, timeline: "Timeline", kind: str, mpi: MediaPoolItem | None, start: int,
                 duration: int, src_start: int = 0, speed: float = 1.0, name: str = "") -> None:
        super().__init__(profile)
        self.timeline, self.kind, self.mpi = timeline, kind, mpi
        self.start, self.duration, self.src_start, self.speed = start, duration, src_start, speed
        self.name = name or (mpi.GetName() if mpi else kind.title())
        self.enabled, self.color, self.flags = True, "", []
        self.props = dict(ITEM_PROPERTIES)
        self.uid = new_id()
        self.linked: list[TimelineItem] = []

    def _ratio(self) -> Fraction:
        """Source frames per timeline frame."""
        if self.mpi is None or self.mpi.info is None:
            return Fraction(1)
        return self.mpi.info.fps / self.timeline._fps() * Fraction(self.speed).limit_denominator(1000)

    def _src_len(self) -> int:
        return round(self.duration * self._ratio())

    def _track(self) -> tuple[str, int]:
        for kind, tracks in self.timeline.tracks.items():
            for i, t in enumerate(tracks, 1):
                if self in t.items:
                    return kind, i
        return "", 0

    def GetName(self) -> str:
        return self.name

    def GetDuration(self, subframe_precision: bool = False) -> int:
        return self.duration

    def GetStart(self, subframe_precision: bool = False) -> int:
        return self.start

    def GetEnd(self, subframe_precision: bool = False) -> int:
        return self.start + self.duration

    def GetLeftOffset(self, subframe_precision: bool = False) -> int:
        return round(self.src_start / self._ratio()) if self.mpi else 0

    def GetRightOffset(self, subframe_precision: bool = False) -> int:
        if self.mpi is None or self.mpi.info is None:
            return 0
        return round((self.mpi.info.frames - self.src_start - self._src_len()) / self._ratio())

    def GetSourceStartFrame(self) -> int:
        return self.src_start

    def GetSourceEndFrame(self) -> int:
        return self.src_start + self._src_len()

    def GetSourceStartTime(self) -> float:
        return float(self.src_start / self.mpi.info.fps) if self.mpi and self.mpi.info else 0.0

    def GetSourceEndTime(self) -> float:
        return float(self.GetSourceEndFrame() / self.mpi.info.fps) if self.mpi and self.mpi.info else 0.0

    def GetMediaPoolItem(self) -> MediaPoolItem | None:
        return self.mpi

    def GetClipColor(self) -> str:
        return self.color

    def SetClipColor(self, colorName: str) -> bool:
        self.color = colorName
        return True

    def ClearClipColor(self) -> bool:
        self.color = ""
        return True

    def GetFlagList(self) -> list[str]:
        return list(self.flags)

    def AddFlag(self, color: str) -> bool:
        self.flags.append(color)
        return True

    def ClearFlags(self, color: str) -> bool:
        self.flags = [] if color == "All" else [f for f in self.flags if f != color]
        return True

    def GetClipEnabled(self) -> bool:
        return self.enabled

    def SetClipEnabled(self, enabled: bool) -> bool:
        self.enabled = bool(enabled)
        return True

    def GetProperty(self, propertyKey: str | None = None) -> Any:
        return dict(self.props) if propertyKey is None else self.props.get(propertyKey)

    def SetProperty(self, propertyKey: str, propertyValue: Any) -> bool:
        if propertyKey not in self.props:
            return False
        self.props[propertyKey] = propertyValue
        return True

    def GetTrackTypeAndIndex(self) -> list:
        kind, idx = self._track()
        return [kind, idx]

    def GetLinkedItems(self) -> list["TimelineItem"]:
        return list(self.linked)

    def GetUniqueId(self) -> str:
        return self.uid


class Timeline(ScriptObject):
    def __init__(self, profile: Profile, project: "Project", name: str, start_tc: str = "01:00:00:00") -> None:
        super().__init__(profile)
        self.project, self.name, self.uid = project, name, new_id()
        self.settings = {k: v for k, v in project.settings.items() if k.startswith("timeline")}
        self.start = tc_to_frames(start_tc, float(self._fps()))
        self.tracks: dict[str, list[Track]] = {"video": [Track("Video 1")], "audio": [Track("Audio 1")],
                                               "subtitle": []}
        self.playhead = self.start
        self.selected: list[TimelineItem] = []
        self.marks: dict = {}
        self.mpi: MediaPoolItem | None = None

    def _fps(self) -> Fraction:
        return Fraction(self.settings.get("timelineFrameRate", "25")).limit_denominator(1001)

    def _items(self, kind: str = "video"):
        for t in self.tracks[kind]:
            yield from t.items

    def _free(self, track: Track, start: int, dur: int) -> bool:
        return all(it.start + it.duration <= start or start + dur <= it.start for it in track.items)

    def _append(self, info: dict) -> list[TimelineItem]:
        """One clipInfo of MediaPool.AppendToTimeline."""
        mpi = info.get("mediaPoolItem")
        if not isinstance(mpi, MediaPoolItem) or mpi.kind != "media" or mpi.info is None:
            return []
        frames = mpi.info.frames
        s = int(info.get("startFrame", 0))
        e = int(info.get("endFrame", frames if self._profile.end_exclusive else frames - 1))
        n = e - s + (0 if self._profile.end_exclusive else 1)
        if s < 0 or n <= 0 or s + n > frames:
            return []
        dur = round(n * self._fps() / mpi.info.fps)
        idx = int(info.get("trackIndex", 1))
        media = info.get("mediaType")
        made = []
        kinds = ["video"] * (media in (None, 1)) + ["audio"] * (media in (None, 2) and mpi.info.has_audio)
        for kind in kinds:
            if not 1 <= idx <= len(self.tracks[kind]):
                if kind == "video" or media == 2:
                    return []
                continue
            track = self.tracks[kind][idx - 1]
            rec = int(info["recordFrame"]) if "recordFrame" in info else max(
                [self.start] + [it.start + it.duration for it in track.items])
            if not self._free(track, rec, dur):
                if kind == "video" or media == 2:
                    return []
                continue
            item = TimelineItem(self._profile, self, "clip", mpi, rec, dur, s)
            track.items.append(item)
            track.items.sort(key=lambda it: it.start)
            made.append(item)
        for it in made:
            it.linked = [o for o in made if o is not it]
        return made

    def GetName(self) -> str:
        return self.name

    def SetName(self, timelineName: str) -> bool:
        if any(t.name == timelineName for t in self.project.timelines if t is not self):
            return False
        self.name = timelineName
        return True

    def GetStartFrame(self) -> int:
        return self.start

    def GetEndFrame(self) -> int:
        ends = [it.start + it.duration for k in ("video", "audio") for it in self._items(k)]
        return max([self.start] + ends)

    def GetStartTimecode(self) -> str:
        return frames_to_tc(self.start, float(self._fps()))

    def GetSetting(self, settingName: str | None = None) -> Any:
        return dict(self.settings) if settingName is None else self.settings.get(settingName, "")

    def SetSetting(self, settingName: str, settingValue: str) -> bool:
        if settingName not in self.settings:
            return False
        self.settings[settingName] = str(settingValue)
        return True

    def GetTrackCount(self, trackType: str) -> int:
        return len(self.tracks.get(trackType, []))

    def AddTrack(self, trackType: str, options: Any = None) -> bool:
        if trackType not in self.tracks:
            return False
        tracks = self.tracks[trackType]
        new = Track(f"{trackType.title()} {len(tracks) + 1}")
        index = options.get("index") if isinstance(options, dict) and self._profile.add_track_index else None
        if isinstance(index, int) and 1 <= index <= len(tracks):
            tracks.insert(index - 1, new)
        else:
            tracks.append(new)
        return True

    def DeleteTrack(self, trackType: str, trackIndex: int) -> bool:
        tracks = self.tracks.get(trackType, [])
        if not 1 <= trackIndex <= len(tracks):
            return False
        del tracks[trackIndex - 1]
        return True

    def GetItemListInTrack(self, trackType: str, index: int) -> list[TimelineItem] | None:
        tracks = self.tracks.get(trackType, [])
        if not 1 <= int(index) <= len(tracks):
            return None
        return sorted(tracks[int(index) - 1].items, key=lambda it: it.start)

    def GetTrackName(self, trackType: str, trackIndex: int) -> str:
        tracks = self.tracks.get(trackType, [])
        return tracks[trackIndex - 1].name if 1 <= trackIndex <= len(tracks) else ""

    def SetTrackName(self, trackType: str, trackIndex: int, name: str) -> bool:
        tracks = self.tracks.get(trackType, [])
        if not 1 <= trackIndex <= len(tracks):
            return False
        tracks[trackIndex - 1].name = name
        return True

    def GetIsTrackEnabled(self, trackType: str, trackIndex: int) -> bool:
        tracks = self.tracks.get(trackType, [])
        return 1 <= trackIndex <= len(tracks) and tracks[trackIndex - 1].enabled

    def SetTrackEnable(self, trackType: str, trackIndex: int, enabled: bool) -> bool:
        tracks = self.tracks.get(trackType, [])
        if not 1 <= trackIndex <= len(tracks):
            return False
        tracks[trackIndex - 1].enabled = bool(enabled)
        return True

    def GetIsTrackLocked(self, trackType: str, trackIndex: int) -> bool:
        tracks = self.tracks.get(trackType, [])
        return 1 <= trackIndex <= len(tracks) and tracks[trackIndex - 1].locked

    def DeleteClips(self, timelineItems: list, ripple: bool = False) -> bool:
        found = False
        for it in timelineItems or []:
            for tracks in self.tracks.values():
                for t in tracks:
                    if it in t.items:
                        t.items.remove(it)
                        found = True
        return found

    def DuplicateTimeline(self, timelineName: str | None = None) -> "Timeline | None":
        name = timelineName or f"{self.name} copy"
        dup = self.project._new_timeline(name, make_current=False)
        if dup is None:
            return None
        dup.settings, dup.start, dup.playhead = dict(self.settings), self.start, self.start
        dup.tracks = {}
        for kind, tracks in self.tracks.items():
            dup.tracks[kind] = []
            for t in tracks:
                nt = Track(t.name)
                nt.enabled = t.enabled
                for it in t.items:
                    c = TimelineItem(self._profile, dup, it.kind, it.mpi, it.start, it.duration, it.src_start,
                                     it.speed, it.name)
                    c.enabled, c.color, c.flags, c.props = it.enabled, it.color, list(it.flags), dict(it.props)
                    nt.items.append(c)
                dup.tracks[kind].append(nt)
        return dup

    def GetCurrentTimecode(self) -> str:
        return frames_to_tc(self.playhead, float(self._fps()))

    def SetCurrentTimecode(self, timecode: str) -> bool:
        self.playhead = tc_to_frames(timecode, float(self._fps()))
        return True

    def GetCurrentVideoItem(self) -> TimelineItem | None:
        for t in reversed(self.tracks["video"]):
            for it in t.items:
                if t.enabled and it.start <= self.playhead < it.start + it.duration:
                    return it
        return None

    def GetSelectedClips(self) -> list[TimelineItem]:
        return list(self.selected)

    def GetMarkInOut(self) -> dict:
        return {k: dict(v) for k, v in self.marks.items()}

    def SetMarkInOut(self, markIn: int, markOut: int, type: str = "all") -> bool:
        for k in (("video", "audio") if type == "all" else (type,)):
            self.marks[k] = {"in": int(markIn), "out": int(markOut)}
        return True

    def GetMediaPoolItem(self) -> MediaPoolItem | None:
        return self.mpi

    def GetUniqueId(self) -> str:
        return self.uid
