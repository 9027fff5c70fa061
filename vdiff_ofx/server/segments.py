"""Closed segments: a long job is cut into frame ranges, each written by ``pipeline.run`` to a hidden file beside
the output and recorded in the store, so a crash loses at most one segment. The finished segments are joined by
remuxing their packets (no re-encode), with the source's audio copied in, under a temporary name then renamed.

Only intra-frame codecs (ProRes, DNxHR, FFV1) are cut: every packet stands alone, so context frames decoded
around a segment for a temporal model can simply be dropped at the join and the result is frame-for-frame the
uninterrupted run's. Long-GOP codecs (H.264/H.265) and VFR sources run as one piece (restarted after a crash).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import OutputError
from ..io._averr import output_errors
from ..io.codecs import EncodeSettings, container_of
from ..io.copies import StreamCopier
from ..io.encode import LOOKAHEAD_S, MUXERS
from ..io.probe import VideoInfo
from ..pipeline import partial_name
from .store import Segment

INTRA_CODECS = ("prores", "prores_ks", "dnxhd", "ffv1")


def can_segment(settings: EncodeSettings, info: VideoInfo) -> bool:
    """Whether a job can be cut and rejoined losslessly: intra codec, constant frame rate."""
    return settings.codec in INTRA_CODECS and not info.vfr


def segment_path(output: Path, job_id: str, idx: int) -> Path:
    return output.with_name(f".{output.stem}.vdiff-seg-{job_id}-{idx:04d}{output.suffix}")


def plan(job_id: str, output: Path, start: int, end: int, size: int) -> list[Segment]:
    """Frame ranges of ``size`` frames covering [start, end)."""
    size = max(1, size)
    return [Segment(i, s, min(s + size, end), str(segment_path(output, job_id, i)), False)
            for i, s in enumerate(range(start, end, size))]


@dataclass(frozen=True)
class Span:
    """What pipeline.run decodes for a segment (with temporal context) and which of its frames to keep."""

    start: int
    end: int
    head: int  # context frames before the segment's first frame

    @staticmethod
    def of(seg: Segment, job_start: int, job_end: int, window: int) -> Span:
        r = window // 2
        s, e = max(job_start, seg.start - r), min(job_end, seg.end + r)
        return Span(s, e, seg.start - s)


def join(parts: list[tuple[Segment, Span]], output: Path, source: VideoInfo, job_start: int,
         timecode: str | None, copy_streams: bool) -> int:
    """Remux the segments' kept packets into ``output`` (atomic rename); returns the number of frames written."""
    if not parts:
        raise OutputError("nothing to join")
    ext = container_of(str(output))
    rate = Fraction(source.frame_rate)
    tb = 1 / rate
    temp = partial_name(output)
    written = 0
    copier = None
    try:
        with output_errors(str(output), "cannot create"):
            out = av.open(str(temp), "w", format=MUXERS[ext])
        try:
            with av.open(parts[0][0].path) as first:
                vs = out.add_stream_from_template(first.streams.video[0])
                sar = first.streams.video[0].sample_aspect_ratio  # the template leaves it behind
            if sar:
                vs.codec_context.sample_aspect_ratio = sar
            vs.codec_context.framerate = rate  # becomes avg_frame_rate, which mov needs for its timecode track
            vs.time_base = tb
            if timecode:
                vs.metadata["timecode"] = timecode
            if source.rotation:
                vs.set_display_rotation(source.rotation)
            copier = StreamCopier(out, source) if copy_streams else None
            for seg, span in parts:
                with av.open(seg.path) as part:
                    keep = range(span.head, span.head + (seg.end - seg.start))
                    n = 0
                    for pkt in part.demux(part.streams.video[0]):
                        if not pkt.size:
                            continue
                        if n in keep:
                            frame_no = seg.start - job_start + (n - span.head)
                            if copier is not None:
                                copier.pump(float(frame_no * tb) + LOOKAHEAD_S)
                            pkt.stream = vs
                            pkt.pts = pkt.dts = frame_no
                            pkt.duration = 1
                            pkt.time_base = tb
                            with output_errors(str(output)):
                                out.mux(pkt)
                            written += 1
                        n += 1
                    if n < keep.stop:
                        raise OutputError(f"segment {seg.path} has {n} frames, expected {keep.stop}; "
                                          "it will be redone")
            if copier is not None:
                copier.pump(None)
        finally:
            with output_errors(str(output)):
                out.close()
        os.replace(temp, output)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        if copier is not None:
            copier.close()
    return written


def remove_partials(path: Path) -> None:
    """Delete half-written files pipeline.run left for ``path`` when the server was killed mid-write."""
    for stale in path.parent.glob(f".{path.stem}.vdiff-partial-*{path.suffix}"):
        try:
            stale.unlink()
        except OSError:
            pass


def remove_files(segments: list[Segment], output: Path | None = None) -> None:
    """Delete segment files (and their half-written temporaries, and the join's for ``output``)."""
    for seg in segments:
        try:
            Path(seg.path).unlink(missing_ok=True)
        except OSError:
            pass
        remove_partials(Path(seg.path))
    if output is not None:
        remove_partials(output)
