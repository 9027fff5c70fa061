"""Project and ProjectManager, with the render queue (SetRenderSettings, AddRenderJob, StartRendering,
GetRenderJobStatus)."""

from __future__ import annotations

import os
import threading
from typing import Any

from . import render
from .base import ScriptObject, new_id
from .pool import MediaPool, MediaPoolItem
from .profiles import Profile
from .timeline import Timeline

RENDER_KEYS = {"SelectAllFrames", "MarkIn", "MarkOut", "TargetDir", "CustomName", "UniqueFilenameStyle",
               "ExportVideo", "ExportAudio", "FormatWidth", "FormatHeight", "FrameRate", "PixelAspectRatio",
               "VideoQuality", "AudioCodec", "AudioBitDepth", "AudioSampleRate", "ColorSpaceTag", "GammaTag",
               "ExportAlpha", "EncodingProfile", "MultiPassEncode", "AlphaMode", "NetworkOptimization"}
PRESETS = {"H.264 Master": ("mp4", "H264"), "H.265 Master": ("mp4", "H265"), "YouTube - 1080p": ("mp4", "H264"),
           "ProRes 422 HQ": ("mov", "ProRes422HQ")}


class Project(ScriptObject):
    def __init__(self, profile: Profile, name: str) -> None:
        super().__init__(profile)
        self.name, self.uid = name, new_id()
        self.settings = {"timelineFrameRate": "25", "timelineResolutionWidth": "96",
                         "timelineResolutionHeight": "64"}
        self.pool = MediaPool(profile, self)
        self.timelines: list[Timeline] = []
        self.current_timeline: Timeline | None = None
        self.render_settings: dict = {}
        self.fmt, self.codec, self.preset = "mov", "H264", "Custom"
        self.jobs: dict[str, render.RenderJob] = {}
        self.render_thread: threading.Thread | None = None

    def _new_timeline(self, name: str, make_current: bool = True) -> Timeline | None:
        if any(t.name == name for t in self.timelines):
            return None
        tl = Timeline(self._profile, self, name)
        tl.mpi = MediaPoolItem(self._profile, name, "timeline", timeline=tl)
        self.pool.current.clips.append(tl.mpi)
        self.timelines.append(tl)
        if make_current or self.current_timeline is None:
            self.current_timeline = tl
        return tl

    def _delete_timeline(self, tl: Timeline) -> bool:
        if tl not in self.timelines:
            return False
        self.timelines.remove(tl)
        self.pool.DeleteClips([tl.mpi])
        if self.current_timeline is tl:
            self.current_timeline = self.timelines[0] if self.timelines else None
        return True

    def GetName(self) -> str:
        return self.name

    def GetUniqueId(self) -> str:
        return self.uid

    def GetMediaPool(self) -> MediaPool:
        return self.pool

    def GetTimelineCount(self) -> int:
        return len(self.timelines)

    def GetTimelineByIndex(self, idx: int) -> Timeline | None:
        return self.timelines[idx - 1] if 1 <= idx <= len(self.timelines) else None

    def GetCurrentTimeline(self) -> Timeline | None:
        return self.current_timeline

    def SetCurrentTimeline(self, timeline: Timeline) -> bool:
        if timeline not in self.timelines:
            return False
        self.current_timeline = timeline
        return True

    def GetSetting(self, settingName: str | None = None) -> Any:
        return dict(self.settings) if settingName is None else self.settings.get(settingName, "")

    def SetSetting(self, settingName: str, settingValue: str) -> bool:
        if settingName not in self.settings:
            return False
        self.settings[settingName] = str(settingValue)
        return True

    # --- render queue ---
    def GetRenderPresetList(self) -> list[str]:
        return list(PRESETS)

    def LoadRenderPreset(self, presetName: str) -> bool:
        if presetName not in PRESETS:
            return False
        self.fmt, self.codec = PRESETS[presetName]
        self.preset = presetName
        return True

    def GetRenderFormats(self) -> dict:
        return {"QuickTime": "mov", "MP4": "mp4"}

    def GetRenderCodecs(self, renderFormat: str) -> dict:
        return {"H.264": "H264", "Apple ProRes 422 HQ": "ProRes422HQ"} if renderFormat in ("mov", "mp4") else {}

    def GetCurrentRenderFormatAndCodec(self) -> dict:
        return {"format": self.fmt, "codec": self.codec}

    def SetCurrentRenderFormatAndCodec(self, format: str, codec: str) -> bool:
        if format not in ("mov", "mp4") or codec not in self.GetRenderCodecs(format).values():
            return False
        self.fmt, self.codec = format, codec
        return True

    def SetRenderSettings(self, settings: dict) -> bool:
        if not isinstance(settings, dict) or not set(settings) <= RENDER_KEYS:
            return False
        self.render_settings.update(settings)
        return True

    def AddRenderJob(self) -> str:
        tl = self.current_timeline
        target = self.render_settings.get("TargetDir", "")
        if tl is None or not target or not os.path.isdir(target):
            return ""
        jid = new_id()
        self.jobs[jid] = render.RenderJob(jid, tl, dict(self.render_settings), self.fmt, self.codec, self.preset)
        return jid

    def DeleteRenderJob(self, jobId: str) -> bool:
        return self.jobs.pop(jobId, None) is not None

    def DeleteAllRenderJobs(self) -> bool:
        self.jobs.clear()
        return True

    def GetRenderJobList(self) -> list[dict]:
        return [j.info() for j in self.jobs.values()]

    def GetRenderJobStatus(self, jobId: str) -> dict:
        j = self.jobs.get(jobId)
        if j is None:
            return {}
        st = {"JobStatus": j.status, "CompletionPercentage": j.percent}
        if j.status == "Complete":
            st["TimeTakenToRenderInMs"] = j.took_ms
        if j.error:
            st["Error"] = j.error
        return st

    def IsRenderingInProgress(self) -> bool:
        return self.render_thread is not None and self.render_thread.is_alive()

    def StartRendering(self, *args, isInteractiveMode: bool = False) -> bool:
        if self.IsRenderingInProgress():
            return False
        ids = [a for a in args if isinstance(a, str)]
        for a in args:
            if isinstance(a, (list, tuple)):
                ids += list(a)
        ids = ids or [j for j, job in self.jobs.items() if job.status == "Ready"]
        if not ids or any(i not in self.jobs for i in ids):
            return False
        jobs = [self.jobs[i] for i in ids]

        def work() -> None:
            for j in jobs:
                if j.stop.is_set():
                    j.status = "Cancelled"
                    continue
                render.run(j)

        self.render_thread = threading.Thread(target=work, daemon=True, name="standin-render")
        self.render_thread.start()
        return True

    def StopRendering(self) -> None:
        for j in self.jobs.values():
            j.stop.set()
        return None


class ProjectManager(ScriptObject):
    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self.projects: dict[str, Project] = {}
        self.current: Project | None = None

    def CreateProject(self, projectName: str) -> Project | None:
        if projectName in self.projects:
            return None
        p = Project(self._profile, projectName)
        self.projects[projectName] = p
        self.current = p
        return p

    def LoadProject(self, projectName: str) -> Project | None:
        self.current = self.projects.get(projectName) or self.current
        return self.projects.get(projectName)

    def GetCurrentProject(self) -> Project | None:
        return self.current

    def SaveProject(self) -> bool:
        return self.current is not None

    def GetProjectListInCurrentFolder(self) -> list[str]:
        return list(self.projects)
