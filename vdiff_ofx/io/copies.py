"""The source's audio and subtitle streams, carried into an output beside the enhanced video: packets copied byte for
byte where the output's muxer takes them, audio re-encoded where it does not (Opus into .mov, PCM into .mp4).

Why a trial mux: a muxer's codec list says yes to streams it then refuses when the header or the trailer is written
(MP4 takes 16-bit PCM into its header and fails at the end, .mov refuses Opus), which would lose the whole job at
its last step. Each stream is muxed on its own into memory first, its first packets and trailer included.
"""

from __future__ import annotations

import io
import logging
from fractions import Fraction

import av

from ._averr import reason
from .probe import VideoInfo

log = logging.getLogger(__name__)
Container = av.container.OutputContainer

# What audio a muxer cannot take in its own codec becomes: lossless where the container holds PCM, else AAC.
_REENCODE = {"mov": "pcm_s24le", "mp4": "aac", "matroska": "flac"}
_AAC_BITRATE = 160_000  # per channel pair: transparent for programme audio
_TRIAL_PACKETS = 3
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def trial_mux(fmt: str, path: str, index: int) -> str | None:
    """Why stream ``index`` of ``path`` cannot be copied into a ``fmt`` file (None: it can)."""
    try:
        src = av.open(path)
    except (av.FFmpegError, OSError) as exc:
        return reason(exc)
    out = None
    try:
        out = av.open(io.BytesIO(), "w", format=fmt)
        st = src.streams[index]
        copy = out.add_stream_from_template(st)
        n = 0
        for pkt in src.demux(st):
            if pkt.size == 0 or pkt.dts is None and pkt.pts is None:
                continue
            pkt.stream = copy
            out.mux(pkt)
            n += 1
            if n >= _TRIAL_PACKETS:
                break
        out.close()
        out = None
        return None
    except (av.FFmpegError, ValueError, OSError) as exc:
        return reason(exc)
    finally:
        if out is not None:
            try:
                out.close()
            except (av.FFmpegError, ValueError, OSError):
                pass
        src.close()


class _Reencode:
    """One audio stream decoded and encoded again in the output's codec, timed from its first decoded sample."""

    def __init__(self, out: Container, st: av.audio.stream.AudioStream, codec: str) -> None:
        rate = st.codec_context.sample_rate or 48000
        layout = st.codec_context.layout.name if st.codec_context.layout else "stereo"
        if layout.endswith("channels"):  # an unnamed order ("2 channels", as PCM in AVI says): FFmpeg's default
            count = len(st.codec_context.layout.channels)
            if count not in _DEFAULT_LAYOUTS:
                raise ValueError(f"{count} unnamed audio channels")
            layout = _DEFAULT_LAYOUTS[count]
        self.stream = out.add_stream(codec, rate=rate, layout=layout)
        cc = self.stream.codec_context
        if codec == "aac":
            cc.bit_rate = _AAC_BITRATE * max(1, (len(cc.layout.channels) + 1) // 2)
        fmt = cc.format.name if cc.format else None
        if fmt is None:  # the codec's first sample format (PyAV leaves it unset until opened)
            fmt = av.Codec(codec, "w").audio_formats[0].name
            cc.format = fmt
        self.rate = rate
        self.resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        self.fifo = av.AudioFifo()
        self.next_pts: int | None = None

    def packet(self, pkt: av.Packet, out: Container) -> None:
        for frame in pkt.decode():
            if self.next_pts is None:
                self.next_pts = int(round(float(frame.pts * frame.time_base) * self.rate)) \
                    if frame.pts is not None and frame.time_base else 0
            for f in self.resampler.resample(frame):
                f.pts = None
                self.fifo.write(f)
        self._drain(out, final=False)

    def close(self, out: Container) -> None:
        for f in self.resampler.resample(None):
            f.pts = None
            self.fifo.write(f)
        self._drain(out, final=True)
        for p in self.stream.encode(None):
            out.mux(p)

    def _drain(self, out: Container, final: bool) -> None:
        size = self.stream.codec_context.frame_size or 0
        while self.fifo.samples and (final or self.fifo.samples >= max(size, 1)):
            f = self.fifo.read(min(size, self.fifo.samples) if size else self.fifo.samples)
            f.pts, f.time_base = self.next_pts or 0, Fraction(1, self.rate)
            self.next_pts = (self.next_pts or 0) + f.samples
            for p in self.stream.encode(f):
                out.mux(p)


class StreamCopier:
    """Audio and subtitle streams of ``source`` into ``out``, interleaved with the video by ``pump``."""

    def __init__(self, out: Container, source: VideoInfo) -> None:
        self.out = out
        self.start_s = float((source.start_pts or 0) * source.time_base)
        self.copies: dict[int, av.stream.Stream] = {}
        self.reencodes: dict[int, _Reencode] = {}
        self._pending: av.Packet | None = None
        self._packets = None
        self._src = None
        if source.sequence is not None:  # image files carry no sound
            return
        try:
            self._src = av.open(source.path)
        except (av.FFmpegError, OSError) as exc:
            log.warning("not copying audio: cannot reopen %s: %s", source.path, reason(exc))
            self._src = None
            return
        fmt = out.format.name
        for st in self._src.streams:
            if st.index == source.stream_index or st.type not in ("audio", "subtitle"):
                continue  # tmcd/data is regenerated from the timecode tag; extra video is dropped
            name = getattr(st.codec_context, "name", None)
            why = trial_mux(fmt, source.path, st.index)
            try:
                if why is None:
                    self.copies[st.index] = out.add_stream_from_template(st)
                elif st.type == "audio" and fmt in _REENCODE:
                    self.reencodes[st.index] = _Reencode(out, st, _REENCODE[fmt])
                    log.warning("audio stream %d (%s) cannot be copied into %s (%s): re-encoded as %s", st.index,
                                name, fmt, why, _REENCODE[fmt])
                else:
                    log.warning("not copying %s stream %d (%s): %s cannot hold it (%s)", st.type, st.index, name,
                                fmt, why)
            except (av.FFmpegError, ValueError) as exc:
                log.warning("not copying %s stream %d (%s): %s", st.type, st.index, name, reason(exc))
        kept = [*self.copies, *self.reencodes]
        if kept:
            self._packets = self._src.demux([self._src.streams[i] for i in kept])
        else:
            self.close()

    def pump(self, until_s: float | None) -> None:
        """Mux source packets up to ``until_s`` seconds after the video's start (all that is left when None)."""
        while self._packets is not None:
            pkt, self._pending = self._pending, None
            if pkt is None:
                try:
                    pkt = next(self._packets)
                except StopIteration:
                    self._packets = None
                    break
                except (av.FFmpegError, OSError) as exc:
                    log.warning("stopped copying audio at a damaged packet: %s", reason(exc))
                    self._packets = None
                    break
            if pkt.size == 0 or pkt.dts is None and pkt.pts is None:
                continue
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if until_s is not None and float(t * pkt.time_base) - self.start_s > until_s:
                self._pending = pkt
                return
            index = pkt.stream.index
            if index in self.reencodes:
                self.reencodes[index].packet(pkt, self.out)
            else:
                pkt.stream = self.copies[index]
                self.out.mux(pkt)
        if until_s is None:
            for r in self.reencodes.values():
                r.close(self.out)
            self.reencodes = {}

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None
        self._packets = None
