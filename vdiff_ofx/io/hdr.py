"""HDR10 static metadata (SMPTE ST 2086 mastering display, CTA-861.3 content light level) read from a decoded frame
and written back through x265.

Why: an HDR10 delivery file whose mastering display and MaxCLL/MaxFALL go missing is tone-mapped by players and TVs
with guessed values (brighter or dimmer than graded). FFmpeg hands both over as frame side data laid out as
libavutil's AVMasteringDisplayMetadata / AVContentLightMetadata; PyAV gives the raw bytes and cannot attach side
data to a stream or frame it encodes, so H.265 output carries them through x265's own options and other codecs
cannot (the encoder says so).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import av

from .streams import side_data

_MASTERING = struct.Struct("=20i")  # display_primaries[3][2], white_point[2], min, max (AVRationals); 2 flags follow
_LIGHT = struct.Struct("=2I")          # MaxCLL, MaxFALL (cd/m2)


@dataclass(frozen=True)
class HdrStatic:
    """Chromaticities as CIE xy, luminances in cd/m2; None where the source did not state them."""

    primaries: tuple[tuple[float, float], ...] | None = None  # red, green, blue
    white: tuple[float, float] | None = None
    luminance: tuple[float, float] | None = None  # (min, max)
    max_cll: int | None = None
    max_fall: int | None = None

    def x265_params(self) -> str:
        """The x265 options that write these as SEI (its units: 0.00002 for xy, 0.0001 cd/m2; order G, B, R)."""
        out = []
        if self.primaries and self.white and self.luminance:
            (r, g, b), w = self.primaries, self.white
            xy = "".join(f"{k}({round(p[0] / 0.00002)},{round(p[1] / 0.00002)})"
                         for k, p in (("G", g), ("B", b), ("R", r), ("WP", w)))
            out.append(f"master-display={xy}L({round(self.luminance[1] / 0.0001)},"
                       f"{round(self.luminance[0] / 0.0001)})")
        if self.max_cll is not None:
            out.append(f"max-cll={self.max_cll},{self.max_fall or 0}")
        return ":".join(out)

    def __str__(self) -> str:
        parts = []
        if self.luminance:
            parts.append(f"mastering {self.luminance[0]:g}-{self.luminance[1]:g} cd/m2")
        if self.max_cll is not None:
            parts.append(f"MaxCLL {self.max_cll} MaxFALL {self.max_fall or 0}")
        return ", ".join(parts) or "HDR10 metadata"


def _ratio(num: int, den: int) -> float | None:
    return num / den if den > 0 and num >= 0 else None


def read_hdr(frame: av.VideoFrame) -> HdrStatic | None:
    """The frame's HDR10 static metadata, or None when it carries none (or only malformed side data)."""
    primaries = white = luminance = None
    max_cll = max_fall = None
    for sd in side_data(frame):
        name = sd.type.name
        if name == "MASTERING_DISPLAY_METADATA":
            buf = bytes(sd)
            if len(buf) < _MASTERING.size + 8:
                continue
            v = _MASTERING.unpack_from(buf)
            has_primaries, has_luminance = struct.unpack_from("=2i", buf, _MASTERING.size)
            r = [_ratio(v[i], v[i + 1]) for i in range(0, 20, 2)]
            if has_primaries and None not in r[:8]:
                primaries = ((r[0], r[1]), (r[2], r[3]), (r[4], r[5]))
                white = (r[6], r[7])
            if has_luminance and None not in r[8:]:
                luminance = (r[8], r[9])
        elif name == "CONTENT_LIGHT_LEVEL":
            buf = bytes(sd)
            if len(buf) >= _LIGHT.size:
                max_cll, max_fall = _LIGHT.unpack_from(buf)
    if primaries is None and luminance is None and max_cll is None:
        return None
    return HdrStatic(primaries, white, luminance, max_cll, max_fall)
