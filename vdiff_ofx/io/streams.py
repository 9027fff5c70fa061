"""Decoded frames of a video stream, with the alpha channel FFmpeg's native VP8/VP9 decoders drop.

Why: WebM keeps VP8/VP9 alpha in Matroska BlockAdditional data that only libvpx's decoders read (the native
ones return yuv420p and the overlay comes back opaque); motion-graphics overlays are exactly such files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av

_LIBVPX = {"vp9": "libvpx-vp9", "vp8": "libvpx"}


def alpha_decoder(stream) -> str | None:
    """The libvpx decoder to use for ``stream`` when it is WebM VP8/VP9 with alpha, else None."""
    name = _LIBVPX.get(getattr(stream.codec_context, "name", None) or "")
    tagged = str((stream.metadata or {}).get("alpha_mode", "")) == "1"
    return name if name and tagged and name in av.codecs_available else None


def decoded(container, stream, on_packet: Callable[[av.Packet], None] | None = None) -> Iterator[av.VideoFrame]:
    """``container.decode(stream)``, through libvpx for WebM with alpha (see module docstring); ``on_packet`` sees
    each packet before it is decoded."""
    name = alpha_decoder(stream)
    if name is None and on_packet is None:
        yield from container.decode(stream)
        return
    if name is None:
        ctx = stream.codec_context
    else:
        ctx = av.CodecContext.create(name, "r")
        ctx.thread_count = 0
    for packet in container.demux(stream):
        if on_packet is not None:
            on_packet(packet)
        yield from ctx.decode(packet)


def side_data(frame: av.VideoFrame) -> list:
    """The frame's side data, or none where PyAV cannot list it.

    Why: PyAV builds the whole list at once and raises ValueError on a type its enum does not know (FFmpeg keeps
    adding them; a TIFF's ICC profile is one), which would make a readable file fail on metadata nobody asked for.
    """
    try:
        return list(frame.side_data or ())
    except ValueError:
        return []
