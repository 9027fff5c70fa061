"""Closed segments: a long job is cut into frame ranges, each written by ``pipeline.run`` to a hidden file beside
the output and recorded in the store, so a crash loses at most one segment. The finished segments are joined by
remuxing their packets (no re-encode), with the source's audio copied in, under a temporary name then renamed.

Only intra-frame codecs (ProRes, DNxHR, FFV1) are cut: every packet stands alone, so context frames decoded
around a segment for a temporal model can simply be dropped at the join and the result is frame-for-frame the
uninterrupted run's. Long-GOP codecs (H.264/H.265) and VFR sources run as one piece (restarted after a crash).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import OutputError
from ..io._averr import output_errors, reason
from ..io.codecs import EncodeSettings, container_of
from ..io.probe import VideoInfo
from ..pipeline import partial_name
from .store import Segment

log = logging.getLogger(__name__)

INTRA_CODECS = ("prores", "prores_ks", "dnxhd", "ffv1")
_MUXERS = {".mov": "mov", ".mp4": "mp4", ".mkv": "matroska"}
_LOOKAHEAD_S = 0.5


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
    src = None
    try:
        with output_errors(str(output), "cannot create"):
            out = av.open(str(temp), "w", format=_MUXERS[ext])
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
            copies, src = _copy_streams(out, source) if copy_streams else ({}, None)
            audio = src.demux([src.streams[i] for i in copies]) if copies else None
            pending: list = []
            for seg, span in parts:
                with av.open(seg.path) as part:
                    keep = range(span.head, span.head + (seg.end - seg.start))
                    n = 0
                    for pkt in part.demux(part.streams.video[0]):
                        if not pkt.size:
                            continue
                        if n in keep:
                            frame_no = seg.start - job_start + (n - span.head)
                            audio = _pump(out, audio, copies, pending, float(frame_no * tb) + _LOOKAHEAD_S,
                                          source)
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
            _pump(out, audio, copies, pending, None, source)
        finally:
            with output_errors(str(output)):
                out.close()
        os.replace(temp, output)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        if src is not None:
            src.close()
    return written


def _copy_streams(out, source: VideoInfo) -> tuple[dict, object | None]:
    """Audio/subtitle streams of the source the container can hold, as the pipeline's encoder copies them."""
    try:
        src = av.open(source.path)
    except (av.FFmpegError, OSError) as exc:
        log.warning("not copying audio: cannot reopen %s: %s", source.path, reason(exc))
        return {}, None
    supported = getattr(out, "supported_codecs", None)
    copies = {}
    for st in src.streams:
        if st.index == source.stream_index or st.type not in ("audio", "subtitle"):
            continue
        name = getattr(st.codec_context, "name", None)
        if supported is not None and name not in supported:
            continue
        try:
            copies[st.index] = out.add_stream_from_template(st)
        except (av.FFmpegError, ValueError) as exc:
            log.warning("not copying %s stream %d: %s", st.type, st.index, reason(exc))
    if not copies:
        src.close()
        return {}, None
    return copies, src


def _pump(out, packets, copies: dict, pending: list, until_s: float | None, source: VideoInfo):
    """Mux copied packets up to ``until_s`` seconds after the video start (all when None)."""
    if packets is None:
        return None
    start_s = float((source.start_pts or 0) * source.time_base)
    while True:
        if pending:
            pkt = pending.pop()
        else:
            try:
                pkt = next(packets)
            except StopIteration:
                return None
            except (av.FFmpegError, OSError) as exc:
                log.warning("stopped copying audio at a damaged packet: %s", reason(exc))
                return None
        if pkt.size == 0 or pkt.dts is None and pkt.pts is None:
            continue
        t = pkt.dts if pkt.dts is not None else pkt.pts
        if until_s is not None and float(t * pkt.time_base) - start_s > until_s:
            pending.append(pkt)
            return packets
        pkt.stream = copies[pkt.stream.index]
        out.mux(pkt)


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
