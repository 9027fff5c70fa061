"""Frame-exact decoding of a probed clip into float32 RGB(A).

Seeks to the keyframe before ``start`` when timestamps allow it (so a frame
range of a long clip is cheap) but always identifies frames by number, and
reports truncation/corruption as an InputError naming the failing frame.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from vdiff_ofx.errors import InputError
from vdiff_ofx.io._averr import reason
from vdiff_ofx.io.codec_qp import QpReader
from vdiff_ofx.io.colour import frame_to_rgb
from vdiff_ofx.io.probe import VideoInfo
from vdiff_ofx.io.sequence import open_sequence
from vdiff_ofx.parallel import ordered_map
from vdiff_ofx.io.streams import decoded


@dataclass
class DecodedFrame:
    """One decoded frame: number in the clip, source pts (info.time_base) and float32 RGB(A) 0..1."""

    index: int
    pts: int | None
    rgb: np.ndarray
    qp: float | None = None  # the frame's mean QP on its codec's scale, where the caller asked for it (io.codec_qp)


def _index_of(info: VideoInfo) -> Callable[[int], int] | None:
    """pts -> frame number, when the timestamps let us compute it exactly; None otherwise."""
    if info.frame_pts:
        table = info.frame_pts

        def from_table(pts: int) -> int:
            i = bisect.bisect_left(table, pts)
            if i < len(table) and table[i] == pts:
                return i
            # not exact (should not happen): nearest
            if i > 0 and (i == len(table) or pts - table[i - 1] < table[i] - pts):
                return i - 1
            return i

        return from_table
    if not info.vfr and info.start_pts is not None:
        per_frame = 1 / (info.frame_rate * info.time_base)  # ticks per frame (Fraction)

        def from_rate(pts: int) -> int:
            return int(round((pts - info.start_pts) / per_frame))

        return from_rate
    return None


def _pts_of(info: VideoInfo, index: int) -> int | None:
    if info.frame_pts:
        return info.frame_pts[index]
    if not info.vfr and info.start_pts is not None:
        return info.start_pts + int(index / (info.frame_rate * info.time_base))
    return None


def _open(info: VideoInfo, qp: bool = False):
    try:
        container = open_sequence(info.sequence, info.frame_rate) if info.sequence else av.open(info.path)
        stream = container.streams[info.stream_index]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 0
        reader = QpReader(stream) if qp else None
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise InputError(f"cannot open {info.path}: {reason(exc)}") from None
    return container, stream, reader


def decode_frames(info: VideoInfo, start: int = 0, end: int | None = None, workers: int = 1, qp: bool = False
                  ) -> Iterator[DecodedFrame]:
    """Yield frames ``[start, end)`` by frame number (end defaults to the clip length); ``workers`` threads convert
    them to float RGB side by side (parallel.ordered_map), in order. An interlaced source (``info.field_order``)
    has its 4:2:0 chroma upsampled field by field. ``qp``: also read each frame's mean quantiser where the codec
    gives one (H.264, H.265, VP9, AV1; ``DecodedFrame.qp``, else None)."""

    interlaced = info.field_order is not None

    def convert(raw: tuple[int, int | None, av.VideoFrame, float | None]) -> DecodedFrame:
        idx, pts, frame, frame_qp = raw
        return DecodedFrame(idx, pts, frame_to_rgb(frame, info.colorspace, info.color_range, interlaced), frame_qp)

    yield from ordered_map(convert, _decoded_frames(info, start, end, qp), workers, "vdiff-decode")


def _decoded_frames(info: VideoInfo, start: int, end: int | None, qp: bool = False
                    ) -> Iterator[tuple[int, int | None, av.VideoFrame, float | None]]:
    """(frame number, pts, decoded frame, its QP where asked for) for ``[start, end)``: seek when the timestamps
    allow it, else decode from the start."""
    end = info.frame_count if end is None else min(end, info.frame_count)
    if start < 0:
        raise ValueError("start must be >= 0")
    if start >= end:
        return
    index_of = _index_of(info) if start > 0 else None
    target = _pts_of(info, start) if index_of else None
    if target is not None:
        frames = _decode(info, start, end, seek_pts=target, index_of=index_of, qp=qp)
        try:
            first = next(frames)
        except _SeekMissed:
            pass  # fall through to a linear decode from frame 0
        else:
            yield first
            yield from frames
            return
    yield from _decode(info, start, end, seek_pts=None, index_of=None, qp=qp)


def _presentation_pts(info: VideoInfo, index: int, pts: int | None) -> int | None:
    """Frame ``index``'s time: the index-th of the packets' sorted timestamps where the probe counted them, which is
    what the decoder's own label says on a sound file; some muxers (long-GOP H.264 in MXF) label B-frames with their
    decode time, so the decoded frames' own pts run backwards and no encoder can take them."""
    if info.frame_pts and len(info.frame_pts) == info.frame_count and index < len(info.frame_pts):
        return info.frame_pts[index]
    return pts


class _SeekMissed(Exception):
    """The seek landed after ``start`` (bad index): fall back to decoding from the beginning."""


def _decode(info: VideoInfo, start: int, end: int, seek_pts: int | None,
            index_of: Callable[[int], int] | None, qp: bool = False
            ) -> Iterator[tuple[int, int | None, av.VideoFrame, float | None]]:
    container, stream, reader = _open(info, qp)
    on_packet = reader.packet if reader is not None and reader.reads_packets else None
    next_index = start if seek_pts is not None else 0
    yielded_any = False
    try:
        if seek_pts is not None:
            try:
                container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
            except (av.FFmpegError, OSError):
                raise _SeekMissed from None
        counter = 0
        try:
            for frame in decoded(container, stream, on_packet):
                if index_of is not None:
                    if frame.pts is None:
                        if not yielded_any:
                            raise _SeekMissed
                        idx = next_index
                    else:
                        idx = index_of(frame.pts)
                    if not yielded_any and idx > start:
                        raise _SeekMissed
                else:
                    idx = counter
                counter += 1
                frame_qp = reader.frame(frame) if reader is not None else None  # (skipped frames too: in step)
                if idx < start:
                    continue
                if idx >= end:
                    return
                next_index = idx + 1
                yielded_any = True
                yield idx, _presentation_pts(info, idx, frame.pts), frame, frame_qp
                if next_index >= end:
                    return
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"decoding failed at frame {next_index} of {info.path}: {reason(exc)}") from None
        if seek_pts is not None and not yielded_any:
            raise _SeekMissed
        if next_index < end:
            raise InputError(f"{info.path} is truncated or corrupt: decoding stopped at frame {next_index} "
                             f"of {info.frame_count}")
    finally:
        container.close()
