"""Probe a clip once: everything decode/encode/the pipeline need to know about the source.

The probe also decodes the first frame, so an unknown/undecodable codec fails
here with one clear InputError rather than halfway through a job.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import statistics
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from av.filter import Graph
from av.video.format import VideoFormat

from vdiff_ofx.errors import InputError
from vdiff_ofx.io._averr import reason
from vdiff_ofx.io.colour import PRIMARIES, RANGES, SPACES, TRC, format_layout, frame_to_rgb, name_of
from vdiff_ofx.io.dpx import read_times
from vdiff_ofx.io.hdr import HdrStatic, read_hdr
from vdiff_ofx.io.sequence import DEFAULT_RATE, ImageSequence, find_sequence, open_sequence
from vdiff_ofx.io.streams import decoded
from vdiff_ofx.ops.fields import FIELD_ORDERS, with_first

# Containers whose header frame count (nb_frames) is trustworthy.
_HEADER_COUNT_FORMATS = ("mov", "mp4", "avi", "mxf")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What we know about a source clip's (first) video stream."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    chroma: str
    has_alpha: bool
    frame_rate: Fraction
    time_base: Fraction
    frame_count: int
    duration: float
    vfr: bool
    start_timecode: str | None
    rotation: int
    color_primaries: str | None
    color_trc: str | None
    colorspace: str | None
    color_range: str | None
    other_streams: tuple[str, ...]
    # Additions (defaults so others can construct VideoInfo in tests):
    stream_index: int = 0            # index of the video stream in the container
    start_pts: int | None = None     # pts of frame 0, in time_base
    # Presentation timestamps of every frame, when the probe had to demux them anyway (non-mov containers).
    frame_pts: tuple[int, ...] = field(default=(), repr=False, compare=False)
    field_order: str | None = None   # interlaced: "tt", "bb", "tb" or "bt" (ops.fields.FIELD_ORDERS); None progressive
    sample_aspect: Fraction | None = None  # pixel aspect of an anamorphic source (HDV 4/3, PAL DV 16/15); None square
    hdr: HdrStatic | None = field(default=None, compare=False)  # HDR10 mastering display / light level (io.hdr)
    sequence: ImageSequence | None = None  # a numbered image sequence (io.sequence): frame n is file first + n


def _chroma(pix_fmt: str) -> str:
    fmt = VideoFormat(pix_fmt)
    if fmt.is_rgb or len(fmt.components) < 3:
        return "444"
    w, h = fmt.chroma_width(64), fmt.chroma_height(64)
    return {(64, 64): "444", (32, 64): "422", (32, 32): "420", (16, 64): "411", (64, 32): "440",
            (16, 16): "410"}.get((w, h), "420")


def frame_graph(frame: av.VideoFrame, time_base: Fraction, name: str, args: str) -> Graph:
    """A configured buffer -> ``name``=``args`` -> sink graph for frames like ``frame``.

    Why: the only way PyAV offers to read or set a frame's field flags; the buffer takes the frame's colour
    tags so FFmpeg does not warn about properties changing on the fly.
    """
    graph = Graph()
    src = graph.add("buffer", video_size=f"{frame.width}x{frame.height}", pix_fmt=frame.format.name,
                    time_base=str(time_base), pixel_aspect="1/1", colorspace=str(int(frame.colorspace)),
                    range=str(int(frame.color_range)))
    node = graph.add(name, args)
    sink = graph.add("buffersink")
    src.link_to(node)
    node.link_to(sink)
    graph.configure()
    return graph


def _bottom_first(frame: av.VideoFrame) -> bool:
    """Whether a decoded interlaced frame is flagged bottom field first (PyAV has no top_field_first)."""
    try:
        graph = frame_graph(frame, Fraction(1, 25), "select", "eq(interlace_type,BOTTOMFIRST)")
        graph.push(frame)
        graph.pull()
        return True
    except (av.BlockingIOError, av.EOFError):
        return False
    except (av.FFmpegError, ValueError) as exc:
        log.debug("cannot read the field flags of the first frame: %s", reason(exc))
        return False


def _field_order(cc, first: av.VideoFrame) -> str | None:
    """The stream's field order when it is interlaced, else None.

    The tag (container, or FFmpeg's parser) names the order; when the first frame is flagged interlaced its
    flags decide which field comes first, as decoders and encoders act on them (FFmpeg's H.264 parser tags
    bottom-first MBAFF "tt"). Frames of codecs with no such flags (FFV1) leave the tag as it is; a stream
    tagged progressive stays progressive (PsF).
    """
    order = int(cc.field_order or 0)
    tag = FIELD_ORDERS.get(order)
    if order == 1 or not first.interlaced_frame:
        return tag
    return with_first(tag, not _bottom_first(first))


def _beyond_one(frame: av.VideoFrame) -> bool:
    return bool(np.nanmax(frame_to_rgb(frame)[..., :3]) > 1.0)  # (half floats too, which to_ndarray refuses)


def _sample_aspect(vs) -> Fraction | None:
    """The pixel aspect ratio as FFmpeg guesses it (the container's, else the bitstream's); None when square or
    unstated."""
    sar = vs.sample_aspect_ratio
    if not sar or sar <= 0 or sar == 1 or not Fraction(1, 100) < sar < 100:
        return None
    return Fraction(sar)


def _header_seconds(vs) -> float | None:
    """The video stream's duration as its header states it (Matroska's DURATION tag, else the stream's)."""
    tag = (vs.metadata or {}).get("DURATION")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass
    return float(vs.duration * vs.time_base) if vs.duration and vs.time_base else None


def _warn_if_short(path: str, vs, count: int, rate: Fraction) -> None:
    """Say so when fewer frames are readable than the header promises (a truncated copy or a damaged tail).

    Why a warning, not an error: what is readable is still worth enhancing, but the editor must know the
    output will be shorter than the clip on the timeline.
    """
    stated = _header_seconds(vs)
    if not stated:
        return
    expected = int(round(stated * float(rate)))
    if count < expected - 2 and count < 0.98 * expected:
        log.warning("%s: only %d of the %d frames its header states are readable (truncated or damaged file?); "
                    "the output will have %d frames", path, count, expected, count)


def _is_vfr(deltas: list[int], tb: Fraction) -> bool:
    """True when frame durations vary by more than timestamp rounding (1 tick) and 2%."""
    deltas = [d for d in deltas if d > 0]
    if len(deltas) < 2:
        return False
    med = statistics.median(deltas)
    tol = max(1.5, 0.02 * med)
    return any(abs(d - med) > tol for d in deltas)


def _timecode(container, stream) -> str | None:
    for md in [stream.metadata, container.metadata] + [s.metadata for s in container.streams if s.type == "data"]:
        for key in ("timecode", "TIMECODE"):
            if md.get(key):
                return str(md[key])
    return None


def _tag(table: dict[int, str], attr: str, tags: dict, *sources) -> str | None:
    """First specified value of a colour tag: container/stream, then first frame, then decoder."""
    return name_of(table, tags[attr]) or next((n for n in (name_of(table, getattr(x, attr)) for x in sources) if n),
                                              None)


def _stream_label(s) -> str:
    cc = s.codec_context if s.type in ("video", "audio", "subtitle") else None
    name = getattr(cc, "name", None) if cc is not None else None
    if not name and s.type == "data":
        name = "tmcd" if ("timecode" in s.metadata or "TimeCode" in s.metadata.get("handler_name", "")) else "unknown"
    return f"{s.type}:{name or 'unknown'}"


def probe(path: str, frame_rate: Fraction | None = None) -> VideoInfo:
    """Open ``path`` (a video file, or a numbered image sequence: io.sequence) and describe its video stream;
    InputError (one line) when it cannot be used. ``frame_rate``: a sequence's (its files carry none; default 24)."""
    seq = find_sequence(path)
    if seq is None and not os.path.exists(path):
        raise InputError(f"file not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"is a folder, not a video file: {path}")
    stated = read_times(seq.path_of(seq.first)) if seq and seq.pattern.lower().endswith(".dpx") else None
    if seq is not None:
        frame_rate = frame_rate or (stated.rate if stated else None) or DEFAULT_RATE
    try:
        container = open_sequence(seq, frame_rate) if seq else av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable video file: {path} ({reason(exc)})") from None
    try:
        info = _probe_open(path, container, seq)
    finally:
        container.close()
    if stated and stated.timecode:  # a DPX scan's own start (Resolve places the sequence by it)
        info = dataclasses.replace(info, start_timecode=stated.timecode)
    return info


def _probe_open(path: str, container, seq: ImageSequence | None = None) -> VideoInfo:
    videos = [s for s in container.streams.video
              if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not videos:
        raise InputError(f"no video stream in {path}")
    vs = videos[0]
    cc = vs.codec_context
    if cc is None or not getattr(cc, "name", None):
        raise InputError(f"unknown video codec in {path}")
    tb = Fraction(vs.time_base) if vs.time_base else Fraction(1, 90000)
    fmt_name = container.format.name

    # Container-level colour tags, read before decoding (some decoders overwrite them from the bitstream).
    tags = {k: getattr(cc, k) for k in ("color_primaries", "color_trc", "colorspace", "color_range")}

    # Decode the first frame: proves the codec works and gives pix_fmt/rotation/colour tags reliably.
    first = None
    try:
        for frame in decoded(container, vs):
            first = frame
            break
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot decode video in {path} ({cc.name}): {reason(exc)}") from None
    if first is None:
        raise InputError(f"no decodable video frames in {path}")

    pix_fmt = first.format.name
    if ("f32" in pix_fmt or "f16" in pix_fmt) and _beyond_one(first):  # EXR: beyond what 0..1 holds
        log.warning("%s holds values above 1.0 (scene-linear highlights); they are clipped: the models work on "
                    "0..1 pictures", path)
    _, bits, _, alpha = format_layout(pix_fmt)
    bits = max(c.bits for c in first.format.components)

    # Frame count and timestamps.
    frame_pts: tuple[int, ...] = ()
    header_ok = any(f in fmt_name.split(",") for f in _HEADER_COUNT_FORMATS) and vs.frames > 0
    if seq is not None:  # counted from the file names: reading every frame of a DPX sequence would take minutes
        header_ok, count, vfr = True, seq.count, False
    elif header_ok:
        count = int(vs.frames)
        try:
            ts = sorted(e.timestamp for e in vs.index_entries if not e.is_discard)
        except Exception:  # noqa: BLE001 - index access is best-effort
            ts = []
        if fmt_name == "avi" and 0 < len(ts) < count:
            # AVI has no timestamps: a dropped frame (capture cards, encoders that skip one) is an empty chunk that
            # the header counts and no decoder returns; the index holds the frames there are, at their times
            count = len(ts)
        vfr = _is_vfr([b - a for a, b in zip(ts, ts[1:])], tb)
    else:
        pts_list: list[int | None] = []
        counting = container
        try:
            try:
                container.seek(0)
            except (av.FFmpegError, OSError):  # a raw elementary stream (.h264, .hevc) cannot seek: read it afresh
                counting = av.open(path)
            for pkt in counting.demux(counting.streams[vs.index]):
                if pkt.size == 0:
                    continue
                pts_list.append(pkt.pts)
        except (av.FFmpegError, OSError):
            pass  # truncated tail: count what was readable; decode reports the failing frame
        finally:
            if counting is not container:
                counting.close()
        count = len(pts_list)
        if all(p is not None for p in pts_list):
            frame_pts = tuple(sorted(pts_list))  # type: ignore[arg-type]
        vfr = _is_vfr([b - a for a, b in zip(frame_pts, frame_pts[1:])], tb)
    if count <= 0:
        raise InputError(f"video has no frames: {path}")

    rate = vs.average_rate or vs.base_rate or vs.guessed_rate
    if not rate and count and vs.duration:
        rate = Fraction(count) / (vs.duration * tb)
    rate = Fraction(rate) if rate else Fraction(25)
    if not vfr and vs.base_rate and abs(Fraction(vs.base_rate) - rate) / rate < Fraction(1, 200):
        rate = Fraction(vs.base_rate)  # exact nominal rate (avoid 2997/125-style averages of ms timestamps)

    if not header_ok:
        _warn_if_short(path, vs, count, rate)
    if vs.duration:
        duration = float(vs.duration * tb)
    elif vfr and len(frame_pts) > 1:
        last = statistics.median(b - a for a, b in zip(frame_pts, frame_pts[1:]))
        duration = float((frame_pts[-1] - frame_pts[0] + last) * tb)
    else:
        duration = float(count / rate)  # not the container's, which includes audio

    return VideoInfo(
        path=path,
        container=fmt_name,
        codec=cc.name,
        width=int(first.width),
        height=int(first.height),
        pix_fmt=pix_fmt,
        bit_depth=int(bits),
        chroma=_chroma(pix_fmt),
        has_alpha=bool(alpha),
        frame_rate=rate,
        time_base=tb,
        frame_count=count,
        duration=duration,
        vfr=vfr,
        start_timecode=_timecode(container, vs),
        rotation=int(round((first.rotation or 0) / 90.0)) * 90 % 360,
        color_primaries=_tag(PRIMARIES, "color_primaries", tags, first, cc),
        color_trc=_tag(TRC, "color_trc", tags, first, cc),
        colorspace=_tag(SPACES, "colorspace", tags, first, cc),
        color_range=_tag(RANGES, "color_range", tags, first, cc),
        other_streams=tuple(_stream_label(s) for s in container.streams if s.index != vs.index),
        stream_index=vs.index,
        start_pts=first.pts,
        frame_pts=frame_pts,
        field_order=_field_order(cc, first),
        sample_aspect=_sample_aspect(vs),
        sequence=seq,
        hdr=read_hdr(first),
    )
