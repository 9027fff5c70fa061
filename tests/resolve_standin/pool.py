"""MediaPool, Folder and MediaPoolItem as Blackmagic's README documents them."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .base import ScriptObject, new_id
from .media import MediaInfo, frames_to_tc, probe, probe_sequence, tc_to_frames
from .profiles import Profile

if TYPE_CHECKING:
    from .project import Project
    from .timeline import Timeline

VIDEO_EXT = {".mov", ".mp4", ".mkv", ".mxf", ".avi"}


class MediaPoolItem(ScriptObject):
    """A clip in the pool. ``kind``: media (a file), timeline, compound, fusion, generator."""

    def __init__(self, profile: Profile, name: str, kind: str = "media", info: MediaInfo | None = None,
                 timeline: "Timeline | None" = None) -> None:
        super().__init__(profile)
        self.name, self.kind, self.info, self.timeline = name, kind, info, timeline
        self.uid = new_id()
        self.color = ""
        self.flags: list[str] = []
        self.metadata: dict[str, str] = {}

    def _props(self) -> dict[str, Any]:
        if self.kind == "timeline":
            return {"Clip Name": self.name, "Type": "Timeline", "File Path": "", "FPS": float(
                self.timeline.GetSetting("timelineFrameRate")) if self.timeline else 0.0}
        if self.kind != "media" or self.info is None:
            return {"Clip Name": self.name, "Type": {"compound": "Compound", "fusion": "Fusion Composition",
                                                       "generator": "Generator"}.get(self.kind, self.kind),
                    "File Path": "", "FPS": 25.0, "Frames": "0"}
        i = self.info
        fps = float(i.fps)
        start = tc_to_frames(i.timecode, fps)
        return {"Clip Name": self.name, "File Path": i.path, "File Name": os.path.basename(i.path),
                "Type": "Video + Audio" if i.has_audio else "Video", "FPS": fps, "Frames": str(i.frames),
                "Start TC": frames_to_tc(start, fps), "End TC": frames_to_tc(start + i.frames, fps),
                "Start": "0", "End": str(i.frames - 1), "Resolution": f"{i.width}x{i.height}",
                "Video Codec": i.codec, "Duration": frames_to_tc(i.frames, fps)}

    def GetName(self) -> str:
        return self.name

    def GetClipProperty(self, propertyName: str | None = None) -> Any:
        props = self._props()
        if propertyName is None:
            return props
        return props.get(propertyName, "")

    def SetClipProperty(self, propertyName: str, propertyValue: str) -> bool:
        if propertyName == "Clip Name":
            self.name = str(propertyValue)
            return True
        return False

    def GetMetadata(self, metadataType: str | None = None) -> Any:
        return dict(self.metadata) if metadataType is None else self.metadata.get(metadataType, "")

    def SetMetadata(self, key: Any, value: str | None = None) -> bool:
        if isinstance(key, dict):
            self.metadata.update({str(k): str(v) for k, v in key.items()})
        else:
            self.metadata[str(key)] = str(value)
        return True

    def GetMediaId(self) -> str:
        return self.uid

    def GetUniqueId(self) -> str:
        return self.uid

    def GetClipColor(self) -> str:
        return self.color

    def SetClipColor(self, colorName: str) -> bool:
        self.color = colorName
        return True

    def GetFlagList(self) -> list[str]:
        return list(self.flags)

    def AddFlag(self, color: str) -> bool:
        self.flags.append(color)
        return True

    def GetMarkInOut(self) -> dict:
        return {}

    def ReplaceClip(self, filePath: str) -> bool:
        """Replaces the underlying asset of this pool item (every use of it changes)."""
        if not os.path.isfile(filePath):
            return False
        self.info = probe(filePath)
        return True


class Folder(ScriptObject):
    def __init__(self, profile: Profile, name: str) -> None:
        super().__init__(profile)
        self.name, self.uid = name, new_id()
        self.clips: list[MediaPoolItem] = []
        self.subfolders: list[Folder] = []

    def GetClipList(self) -> list[MediaPoolItem]:
        return list(self.clips)

    def GetName(self) -> str:
        return self.name

    def GetSubFolderList(self) -> list["Folder"]:
        return list(self.subfolders)

    def GetUniqueId(self) -> str:
        return self.uid

    def GetIsFolderStale(self) -> bool:
        return False

    def walk(self):
        yield self
        for f in self.subfolders:
            yield from f.walk()


class MediaPool(ScriptObject):
    def __init__(self, profile: Profile, project: "Project") -> None:
        super().__init__(profile)
        self.project = project
        self.root = Folder(profile, "Master")
        self.current = self.root
        self.selected: list[MediaPoolItem] = []
        self.uid = new_id()

    def GetRootFolder(self) -> Folder:
        return self.root

    def AddSubFolder(self, folder: Folder, name: str) -> Folder | None:
        if not isinstance(folder, Folder) or not name:
            return None
        new = Folder(self._profile, str(name))
        folder.subfolders.append(new)
        return new

    def GetCurrentFolder(self) -> Folder:
        return self.current

    def SetCurrentFolder(self, folder: Folder) -> bool:
        if not isinstance(folder, Folder) or not any(folder is f for f in self.root.walk()):
            return False
        self.current = folder
        return True

    def ImportMedia(self, items: list) -> list[MediaPoolItem]:
        """Imports file paths into the current folder; a file already in that folder is not imported again."""
        out = []
        for p in items or []:
            if isinstance(p, dict) and "%" in str(p.get("FilePath", "")) and "StartIndex" in p and "EndIndex" in p:
                try:  # an image sequence: one clip named file_[001-100].dpx
                    fps = Fraction(self.project.settings.get("timelineFrameRate", "25")).limit_denominator(1001)
                    info = probe_sequence(str(p["FilePath"]), int(p["StartIndex"]), int(p["EndIndex"]), fps)
                except Exception:
                    continue
                mpi = MediaPoolItem(self._profile, os.path.basename(info.path), "media", info)
                self.current.clips.append(mpi)
                out.append(mpi)
                continue
            if isinstance(p, dict):
                p = p.get("FilePath", "")
            p = str(p)
            if not os.path.isfile(p) or os.path.splitext(p)[1].lower() not in VIDEO_EXT:
                continue
            if any(c.info and os.path.abspath(c.info.path) == os.path.abspath(p) for c in self.current.clips):
                continue
            try:
                info = probe(p)
            except Exception:
                continue
            mpi = MediaPoolItem(self._profile, os.path.basename(p), "media", info)
            self.current.clips.append(mpi)
            out.append(mpi)
        return out

    def CreateEmptyTimeline(self, name: str):
        return self.project._new_timeline(str(name)) if name else None

    def CreateTimelineFromClips(self, name: str, *clips):
        tl = self.project._new_timeline(str(name))
        if tl is None:
            return None
        self.AppendToTimeline(*clips)
        return tl

    def AppendToTimeline(self, *args) -> list:
        tl = self.project.current_timeline
        if tl is None:
            return []
        infos = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        out = []
        for info in infos:
            if isinstance(info, MediaPoolItem):
                info = {"mediaPoolItem": info}
            if not isinstance(info, dict):
                continue
            out += tl._append(info)
        return out

    def DeleteTimelines(self, timelines: list) -> bool:
        return all(self.project._delete_timeline(t) for t in timelines or [])

    def DeleteClips(self, clips: list) -> bool:
        ok = True
        for c in clips or []:
            for f in self.root.walk():
                if c in f.clips:
                    f.clips.remove(c)
                    break
            else:
                ok = False
        return ok

    def MoveClips(self, clips: list, targetFolder: Folder) -> bool:
        if not isinstance(targetFolder, Folder):
            return False
        for c in clips or []:
            for f in self.root.walk():
                if c in f.clips:
                    f.clips.remove(c)
            targetFolder.clips.append(c)
        return True

    def GetSelectedClips(self) -> list[MediaPoolItem]:
        return list(self.selected)

    def SetSelectedClip(self, item: MediaPoolItem) -> bool:
        self.selected = [item]
        return True

    def GetUniqueId(self) -> str:
        return self.uid
