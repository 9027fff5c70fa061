"""Write processed float RGB frames to a file the editor can drop back on the timeline.

Everything the editor relies on besides the pixels is carried over from the
source: colour tags, HDR10 metadata (H.265), start timecode, rotation, pixel aspect ratio, frame rate and
per-frame timestamps (so VFR survives), and audio/subtitle packets remuxed byte for byte.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction

import av
import numpy as np

from vdiff_ofx.errors import OutputError
from vdiff_ofx.io._averr import output_errors, reason
from vdiff_ofx.io.codecs import IMAGE_EXTS, EncodeSettings, container_of
from vdiff_ofx.io.colour import PRIMARIES, SPACES, TRC, is_yuv_format, matrix_for, rgb_to_frame, value_of
from vdiff_ofx.io.copies import StreamCopier
from vdiff_ofx.io.dpx import stamp_times
from vdiff_ofx.io.probe import VideoInfo, frame_graph
from vdiff_ofx.ops.fields import FIELD_ORDERS, top_first
from vdiff_ofx.ops.ranges import frames_to_timecode, timecode_to_frames

log = logging.getLogger(__name__)

MUXERS = {".mov": "mov", ".mp4": "mp4", ".mkv": "matroska"}
_FULL_RANGE_OK = ("ffv1", "libx264", "libx265")  # ProRes/DNxHR are always limited range
LOOKAHEAD_S = 0.5  # copied packets are muxed up to this far ahead of the video
# What FFmpeg's `prores` encoder can write in the ProRes frame header; it writes anything else as 0, which reads back
# as an RGB matrix / reserved transfer (measured), so a BT.470BG-tagged clip would come back with false colours.
_PRORES_SPACES = {"bt709", "smpte170m", "bt2020nc", "bt470bg"}  # bt470bg is written as smpte170m (same matrix)
_PRORES_PRIMARIES = {"bt709", "bt470bg", "smpte170m", "bt2020", "smpte431", "smpte432"}
_PRORES_TRC = {"bt709": "bt709", "smpte170m": "bt709", "bt2020-10": "bt709", "bt2020-12": "bt709",  # one curve
               "smpte2084": "smpte2084", "arib-std-b67": "arib-std-b67"}
_FIELD_CODERS = ("prores", "prores_ks", "libx264")  # code interlaced pictures; the others only carry the tag
_FIELD_TAGLESS = {("dnxhd", "mov")}  # DNxHR cannot be coded interlaced and .mov then writes no field order
# Matroska's muxer takes the pixel aspect ratio from a stream field PyAV does not set; these encoders carry it in the
# bitstream instead (VUI), where readers find it. In .mov/.mp4 every codec gets it (the pasp atom).
_SAR_IN_BITSTREAM = ("libx264", "libx265")
_SUBSAMPLED = {"420": (True, True), "422": (True, False), "411": (True, False), "410": (True, True), "440": (False, True)}


def _signalled_colour(codec: str, source: VideoInfo) -> tuple[str, str | None, str | None]:
    """(YUV matrix, primaries, transfer) to encode and tag: the source's, where the codec can signal them.

    The pixels are RGB by now, so the matrix is ours to choose: one the file can say it used. ProRes cannot say
    BT.470BG (written as its twin SMPTE 170M) or matrices outside 709/601/2020 (the size-based guess players
    make is used and tagged); a transfer it cannot name is written unspecified, not as a false one.
    """
    matrix = matrix_for(source.colorspace, source.height)
    primaries, trc = source.color_primaries, source.color_trc
    if codec != "prores":
        return matrix, primaries, trc
    if matrix not in _PRORES_SPACES:
        matrix = matrix_for(None, source.height)
    if matrix == "bt470bg":
        matrix = "smpte170m"
    if primaries not in _PRORES_PRIMARIES:
        primaries = None
    mapped = _PRORES_TRC.get(trc) if trc else None
    if trc and mapped is None:
        log.warning("ProRes cannot tag transfer %s; the output's transfer is written unspecified", trc)
    return matrix, primaries, mapped


def _check_size(settings: EncodeSettings, width: int, height: int) -> None:
    """Refuse, before any frame is processed, sizes an encoder would reject or garble.

    x264/x265 refuse odd sizes with subsampled chroma; FFmpeg's ProRes 4:2:2 encoders refuse (`prores`) or
    garble the last column (`prores_ks`, measured) at odd widths, while ProRes 4444, DNxHR and FFV1 keep them.
    """
    chroma = next((c for c in _SUBSAMPLED if f"yuv{c}p" in settings.pix_fmt or f"yuva{c}p" in settings.pix_fmt), None)
    if chroma is None or settings.codec not in ("libx264", "libx265", "prores"):
        return
    odd_w = _SUBSAMPLED[chroma][0] and width % 2
    odd_h = _SUBSAMPLED[chroma][1] and height % 2 and settings.codec != "prores"
    if not (odd_w or odd_h):
        return
    even = f"{width - bool(odd_w)}:{height - bool(odd_h)}"
    what = "width and height" if odd_w and odd_h else "width" if odd_w else "height"
    other = ("ProRes 4444 (-c prores_4444), DNxHR HQX or FFV1 (.mkv)" if settings.codec == "prores"
             else "ProRes, DNxHR or FFV1 (.mov/.mkv), which take any size")
    raise OutputError(f"{settings.label} {chroma[0]}:{chroma[1]}:{chroma[2]} needs an even {what}, got "
                      f"{width}x{height}: crop to even (--crop {even}) or write {other}")


def _setup_fields(cc, codec: str, order: str | None, muxer: str) -> str | None:
    """Tag the stream with the field order; for codecs that code fields, turn interlaced coding on.

    Returns the setfield mode ("tff"/"bff") frames must be flagged with, or None: ProRes and x264 take which
    field comes first from each frame's flags, not from the tag, and code unflagged frames top field first.
    """
    if not order:
        return None
    cc.field_order = next(k for k, v in FIELD_ORDERS.items() if v == order)
    if (codec, muxer) in _FIELD_TAGLESS:
        log.warning("%s in .%s cannot be marked interlaced (field order %s): the output will read as progressive; "
                    "write ProRes (.mov) or FFV1 (.mkv) to keep it", codec, muxer, order)
    if codec not in _FIELD_CODERS:
        return None
    cc.flags |= av.codec.context.Flags.interlaced_dct
    return "tff" if top_first(order) else "bff"


class _FieldFlags:
    """Flags frames interlaced, top or bottom field first, through a setfield graph built on the first frame."""

    def __init__(self, mode: str, time_base: Fraction) -> None:
        self.mode, self.time_base = mode, time_base
        self._graph = None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._graph is None:
            self._graph = frame_graph(frame, self.time_base, "setfield", self.mode)
        self._graph.push(frame)
        return self._graph.pull()


class Encoder:
    """Encode frames to ``path`` with ``settings``; a context manager (aborts on exception)."""

    def __init__(self, path: str, source: VideoInfo, settings: EncodeSettings, width: int, height: int,
                 frame_rate: Fraction | None = None, copy_streams: bool = True,
                 container_path_hint: str | None = None, first_number: int = 0) -> None:
        """``first_number``: an image-sequence output's first file number (``path`` is then a printf pattern)."""
        self.path = path
        self.source = source
        self.settings = settings
        self.width, self.height = int(width), int(height)
        ext = container_of(container_path_hint or path)
        rate = Fraction(frame_rate) if frame_rate else Fraction(source.frame_rate)
        self.retimed = frame_rate is not None and Fraction(frame_rate) != Fraction(source.frame_rate)
        # VFR: source pts pass straight through (source time_base). CFR: frame n gets pts n in 1/rate, so the
        # output rate is exact even when the source has millisecond timestamps (mkv); a given source pts is
        # snapped to its frame slot, so dropped/inserted frames keep their place.
        self.passthrough = bool(source.vfr) and not self.retimed
        self.time_base = Fraction(source.time_base) if self.passthrough else 1 / rate
        self._src_slot = 1 / (rate * Fraction(source.time_base))  # source ticks per output frame
        self._pts0 = (source.start_pts or 0) if self.passthrough else \
            int(round((source.start_pts or 0) / self._src_slot))
        self._count = 0
        self._last_pts: int | None = None
        self._first_pts: int | None = None
        self._closed = False
        yuv = is_yuv_format(settings.pix_fmt)
        self.matrix, self.primaries, self.trc = _signalled_colour(settings.codec, source)
        _check_size(settings, self.width, self.height)
        self.color_range = ("pc" if source.color_range == "pc" and settings.codec in _FULL_RANGE_OK else "tv") \
            if yuv else "pc"
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OutputError(f"cannot create {path}: folder does not exist")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot create {path}: permission denied")
        images = ext in IMAGE_EXTS
        self._first_number = first_number
        with output_errors(path, "cannot create"):
            self._out = av.open(path, "w", format="image2", options={"start_number": str(first_number)}) \
                if images else av.open(path, "w", format=MUXERS[ext])
        self._copier: StreamCopier | None = None
        if images and copy_streams and source.other_streams:
            log.warning("an image sequence holds no sound: %s left out", ", ".join(source.other_streams))
        try:
            self._setup_video(rate, yuv)
            self._copier = StreamCopier(self._out, source) if copy_streams and not images else None
        except BaseException:
            self._close_source()
            self._out.close()
            raise

    # -- setup ---------------------------------------------------------------------------------------------
    def _setup_video(self, rate: Fraction, yuv: bool) -> None:
        s, src = self.settings, self.source
        if s.codec == "dnxhd" and (self.width < 256 or self.height < 120):
            raise OutputError(f"{s.label or 'DNxHR'} needs at least 256x120 pixels, "
                              f"got {self.width}x{self.height}: use ProRes or FFV1")
        codec = "prores_ks" if s.codec == "prores" and self.width % 2 else s.codec  # 4444: `prores` needs even
        options = dict(s.options)
        if src.hdr and codec == "libx265":
            options["x265-params"] = ":".join(p for p in (options.get("x265-params"), src.hdr.x265_params()) if p)
        elif src.hdr:
            log.warning("the source's HDR10 metadata (%s) is written only to H.265 output (-c h265_10bit); this %s "
                        "file leaves it out (Resolve grades without it; players would guess it)", src.hdr,
                        s.label or codec)
        try:
            vs = self._out.add_stream(codec, rate=rate, options=options)
        except (av.FFmpegError, ValueError) as exc:
            raise OutputError(f"encoder {s.codec} is not available: {reason(exc)}") from None
        vs.width, vs.height = self.width, self.height
        vs.pix_fmt = s.pix_fmt
        vs.time_base = self.time_base
        cc = vs.codec_context
        cc.time_base = self.time_base
        cc.thread_count = 0
        vs.thread_type = "AUTO"  # frame threads where the encoder has them: FFmpeg's ProRes 2x faster on 2 cores
        cc.color_range = 2 if self.color_range == "pc" else 1
        if yuv:
            cc.colorspace = value_of(SPACES, self.matrix) or 2
        else:
            cc.colorspace = 0
        for attr, table, val in (("color_primaries", PRIMARIES, self.primaries), ("color_trc", TRC, self.trc)):
            num = value_of(table, val)
            if num is not None:
                setattr(cc, attr, num)
        fields = _setup_fields(cc, codec, src.field_order, self._out.format.name)
        if s.codec == "libx265" and self._out.format.name in ("mp4", "mov"):
            cc.codec_tag = "hvc1"  # plays in QuickTime / Resolve on macOS
        if src.start_timecode:
            vs.metadata["timecode"] = src.start_timecode
        if src.rotation:
            vs.set_display_rotation(src.rotation)
        if src.sample_aspect:
            cc.sample_aspect_ratio = src.sample_aspect.limit_denominator(65535)
            if self._out.format.name == "matroska" and codec not in _SAR_IN_BITSTREAM:
                log.warning(".mkv with %s cannot store the pixel aspect ratio %s through this writer, so the "
                            "picture will show squeezed: write .mov for anamorphic sources", s.label or codec,
                            src.sample_aspect)
        self._vs = vs
        self._flag_fields = _FieldFlags(fields, self.time_base) if fields else None

    # -- writing -------------------------------------------------------------------------------------------
    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one float32 HxWx3(4) frame (0..1, clipped, rounded at the output bit depth).

        ``pts`` is the source pts (source time_base; None = next frame slot). VFR sources keep it verbatim;
        CFR sources snap it to its frame slot so the output rate is exact; ignored when retimed.
        """
        self.write_frame(self.prepare(rgb), pts)

    def prepare(self, rgb: np.ndarray) -> av.VideoFrame:
        """The float RGB frame converted to the output's pixel format: the costly half of ``write``, safe to run
        in other threads while frames are written in order (parallel.ordered_map)."""
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, encoder expects {self.width}x{self.height}")
        return rgb_to_frame(rgb, self.settings.pix_fmt, self.matrix, self.color_range,
                            interlaced=self.source.field_order is not None)

    def write_frame(self, frame: av.VideoFrame, pts: int | None = None) -> None:
        """Encode a frame from ``prepare`` (``write`` says what ``pts`` is)."""
        if self._closed:
            raise RuntimeError("write() after close()")
        if pts is None or self.retimed:  # retimed: frame n is shown at n / frame_rate, source pts ignored
            pts = self._pts0 + self._count if not self.passthrough else \
                self._pts0 + int(round(self._count * self._src_slot))
        elif not self.passthrough:
            pts = int(round(pts / self._src_slot))
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts {pts} is not after the previous frame's pts {self._last_pts}")
        cc = self._vs.codec_context
        frame.color_primaries = cc.color_primaries
        frame.color_trc = cc.color_trc
        frame.pts = pts
        frame.time_base = self.time_base
        if self._flag_fields is not None:
            frame = self._flag_fields(frame)
        self._last_pts = pts
        if self._first_pts is None:
            self._first_pts = pts
        self._count += 1
        with output_errors(self.path, f"cannot encode {self.settings.label} to"):
            for pkt in self._vs.encode(frame):
                self._out.mux(pkt)
            if self._copier is not None:
                self._copier.pump(float((pts - self._first_pts) * self.time_base) + LOOKAHEAD_S)

    def close(self) -> None:
        """Flush the encoder, mux the rest of the copied streams and finish the file."""
        if self._closed:
            return
        self._closed = True
        try:
            with output_errors(self.path):
                for pkt in self._vs.encode(None):
                    self._out.mux(pkt)
                if self._copier is not None:
                    self._copier.pump(None)
                self._out.close()
                if self.settings.codec == "dpx":
                    self._stamp_dpx()
        except BaseException:
            try:
                self._out.close()
            except (av.FFmpegError, OSError):
                pass
            raise
        finally:
            self._close_source()

    def _stamp_dpx(self) -> None:
        """Each DPX file gets the rate and its own timecode (the source's start, moved on a frame a file)."""
        rate = Fraction(self.source.frame_rate)
        tc = self.source.start_timecode
        start = timecode_to_frames(tc, rate) if tc else 0
        for i in range(self._count):
            own = frames_to_timecode(start + i, rate, ";" in tc) if tc else None
            stamp_times(self.path % (self._first_number + i), rate, own)

    def abort(self) -> None:
        """Stop without flushing (cancel); the caller deletes the partial file."""
        if self._closed:
            return
        self._closed = True
        try:
            self._out.close()
        except (av.FFmpegError, OSError):
            pass
        finally:
            self._close_source()

    def _close_source(self) -> None:
        if self._copier is not None:
            self._copier.close()

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def remove_partial(path: str) -> None:
    """Delete a partial output, ignoring a file that is already gone."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
