"""Small real clips for the io tests, written with PyAV (bypassing vdiff's own encoder where it matters)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from vdiff_ofx.io.colour import PRIMARIES, SPACES, TRC, rgb_to_frame, value_of


def pattern(i: int, w: int = 64, h: int = 48, alpha: bool = False) -> np.ndarray:
    """Smooth in-gamut test image (gradients + moving ripple), float32 0..1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.1 + 0.8 * xx / w
    g = 0.5 + 0.3 * np.sin(yy / 5 + i) * np.cos(xx / 7)
    b = 0.2 + 0.6 * yy / h
    chans = [r, g, b] + ([0.25 + 0.5 * xx / w] if alpha else [])
    return np.clip(np.stack(chans, -1), 0, 1).astype(np.float32)


def make_clip(path, codec: str = "ffv1", pix_fmt: str = "yuv420p10le", n: int = 8, size: tuple[int, int] = (64, 48),
              rate: Fraction = Fraction(24000, 1001), pts: list[int] | None = None, time_base: Fraction | None = None,
              timecode: str | None = None, audio: str | None = None, colour: tuple = ("bt709", "bt709", "bt709", "tv"),
              rotation: int = 0, options: dict | None = None, container_options: dict | None = None,
              alpha: bool = False) -> list[np.ndarray]:
    """Write a clip; returns the float images that went in. ``audio``: an audio encoder name, e.g. 'aac'."""
    w, h = size
    out = av.open(str(path), "w", options=container_options or {})
    vs = out.add_stream(codec, rate=rate, options=options or {})
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    tb = time_base or (1 / rate)
    vs.time_base = tb
    vs.codec_context.time_base = tb
    prim, trc, space, rng = colour
    cc = vs.codec_context
    for attr, table, val in (("color_primaries", PRIMARIES, prim), ("color_trc", TRC, trc),
                             ("colorspace", SPACES, space)):
        if val:
            setattr(cc, attr, value_of(table, val))
    if rng:
        cc.color_range = 1 if rng == "tv" else 2
    if timecode:
        vs.metadata["timecode"] = timecode
    if rotation:
        vs.set_display_rotation(rotation)
    aus = out.add_stream(audio, rate=48000) if audio else None
    if aus is not None:
        aus.layout = "stereo"
    images = []
    for i in range(n):
        img = pattern(i, w, h, alpha)
        images.append(img)
        frame = rgb_to_frame(img, pix_fmt, space, rng)
        frame.color_primaries, frame.color_trc = cc.color_primaries, cc.color_trc
        frame.pts = pts[i] if pts is not None else i
        frame.time_base = tb
        for pkt in vs.encode(frame):
            out.mux(pkt)
    for pkt in vs.encode(None):
        out.mux(pkt)
    if aus is not None:
        rs = np.random.default_rng(0)
        fmt = aus.codec_context.format.name
        seconds = n / float(rate) if pts is None else float((pts[-1] + 1) * tb)
        nb = 1024
        for k in range(int(seconds * 48000 / nb) + 1):
            if fmt.endswith("p"):
                data = (rs.standard_normal((2, nb)) * 0.05).astype(np.float32 if "flt" in fmt else np.int16)
            else:
                data = (rs.standard_normal((1, nb * 2)) * 1000).astype(np.int16)
            af = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
            af.sample_rate = 48000
            af.pts = k * nb
            for pkt in aus.encode(af):
                out.mux(pkt)
        for pkt in aus.encode(None):
            out.mux(pkt)
    out.close()
    return images


def packets(path, kind: str = "audio") -> list[bytes]:
    """Raw packet payloads of the first stream of ``kind``, in demux order."""
    with av.open(str(path)) as c:
        st = [s for s in c.streams if s.type == kind][0]
        return [bytes(p) for p in c.demux(st) if p.size]


def video_times(path) -> list[float]:
    """Presentation times (s) of every video frame, sorted."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return sorted(float(p.pts * st.time_base) for p in c.demux(st) if p.size and p.pts is not None)
