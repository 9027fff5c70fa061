"""The render queue's work: a real file made from the timeline's picture (top-most enabled video item per frame,
black where there is none), encoded with PyAV on a background thread like Resolve's own render."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import numpy as np

from .media import frame

if TYPE_CHECKING:
    from .timeline import Timeline


@dataclass
class RenderJob:
    job_id: str
    timeline: "Timeline"
    settings: dict
    fmt: str
    codec: str
    preset: str
    status: str = "Ready"
    percent: int = 0
    error: str = ""
    took_ms: int = 0
    output: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def info(self) -> dict:
        s = self.settings
        return {"JobId": self.job_id, "RenderJobName": f"Job {self.job_id[-4:]}", "TimelineName": self.timeline.name,
                "TargetDir": s.get("TargetDir", ""), "OutputFilename": os.path.basename(self.output),
                "MarkIn": self.range()[0], "MarkOut": self.range()[1] - 1, "RenderMode": "Single clip",
                "PresetName": self.preset, "FormatWidth": self.size()[0], "FormatHeight": self.size()[1],
                "FrameRate": float(self.timeline._fps()), "VideoFormat": self.fmt, "VideoCodec": self.codec}

    def range(self) -> tuple[int, int]:
        tl = self.timeline
        if self.settings.get("SelectAllFrames", True) or "MarkIn" not in self.settings:
            return tl.GetStartFrame(), tl.GetEndFrame()
        return int(self.settings["MarkIn"]), int(self.settings.get("MarkOut", tl.GetEndFrame() - 1)) + 1

    def size(self) -> tuple[int, int]:
        tl = self.timeline
        w = int(self.settings.get("FormatWidth") or tl.settings.get("timelineResolutionWidth", 96))
        h = int(self.settings.get("FormatHeight") or tl.settings.get("timelineResolutionHeight", 64))
        return w, h


def picture(tl: "Timeline", f: int, w: int, h: int) -> np.ndarray:
    """What the viewer shows at timeline frame ``f``."""
    for track in reversed(tl.tracks["video"]):
        if not track.enabled:
            continue
        for it in track.items:
            if it.enabled and it.start <= f < it.start + it.duration and it.mpi is not None and it.mpi.info:
                src = it.src_start + int((f - it.start) * it._ratio())
                if not os.path.isfile(it.mpi.info.path):
                    return np.full((h, w, 3), (200, 0, 0), np.uint8)  # "Media Offline"
                rgb = frame(it.mpi.info.path, src)
                if rgb is None:
                    continue
                if rgb.shape[:2] != (h, w):
                    rgb = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(w, h).to_ndarray(format="rgb24")
                return rgb
    return np.zeros((h, w, 3), np.uint8)


def run(job: RenderJob) -> None:
    started = time.monotonic()
    job.status = "Rendering"
    try:
        start, end = job.range()
        w, h = job.size()
        ext = {"QuickTime": "mov", "mov": "mov", "MP4": "mp4", "mp4": "mp4"}.get(job.fmt, "mov")
        name = job.settings.get("CustomName") or job.timeline.name
        job.output = os.path.join(job.settings["TargetDir"], f"{name}.{ext}")
        rate = job.timeline._fps()
        tmp = job.output + ".part." + ext
        with av.open(tmp, "w") as out:
            vs = out.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"crf": "8", "preset": "ultrafast"}
            vs.metadata["timecode"] = job.timeline.GetStartTimecode()
            total = max(1, end - start)
            for i, f in enumerate(range(start, end)):
                if job.stop.is_set():
                    raise InterruptedError("stopped")
                vf = av.VideoFrame.from_ndarray(picture(job.timeline, f, w, h), format="rgb24").reformat(
                    format="yuv420p")
                vf.pts, vf.time_base = i, 1 / Fraction(rate)
                for p in vs.encode(vf):
                    out.mux(p)
                job.percent = int(100 * (i + 1) / total)
            for p in vs.encode():
                out.mux(p)
        os.replace(tmp, job.output)
        job.status, job.percent = "Complete", 100
    except InterruptedError:
        job.status = "Cancelled"
    except Exception as exc:  # a failed render is reported through the job status, as Resolve does
        job.status, job.error = "Failed", str(exc)
    job.took_ms = int((time.monotonic() - started) * 1000)
