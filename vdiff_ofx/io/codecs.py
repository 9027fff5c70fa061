"""Output codec presets and the rules for picking one from the output name and the source.

Editors think in "ProRes 422 HQ" / "H.264", not encoder flags; this module
maps those names to ffmpeg encoders and refuses containers that cannot hold
them, before any frame is processed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace

from vdiff_ofx.errors import OutputError
from vdiff_ofx.io.probe import VideoInfo
from vdiff_ofx.io.sequence import output_sequence


@dataclass(frozen=True)
class EncodeSettings:
    """An ffmpeg encoder, pixel format and options, with a human label."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    label: str = ""
    preset: str = ""  # addition: the PRESETS key this came from


@dataclass(frozen=True)
class Preset:
    """A user-facing codec choice; pix_fmt is resolved per source by :func:`choose_settings`."""

    name: str
    label: str
    codec: str
    containers: tuple[str, ...]
    depths: tuple[int, ...]         # bit depths this preset can write, lowest first
    options: dict[str, str]
    chromas: tuple[str, ...] = ("420", "422", "444")
    fixed_pix_fmt: str | None = None  # when the preset fixes the format (ProRes/DNxHR)


_X264 = {"crf": "14", "preset": "medium"}
_X265 = {"crf": "14", "preset": "medium", "x265-params": "log-level=error"}

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("prores_hq", "ProRes 422 HQ", "prores", (".mov", ".mkv"), (10,),
           {"profile": "3", "vendor": "apl0"}, ("422",), "yuv422p10le"),
    Preset("prores_4444", "ProRes 4444", "prores", (".mov", ".mkv"), (10,),
           {"profile": "4", "vendor": "apl0"}, ("444",), "yuv444p10le"),
    Preset("dnxhr_hqx", "DNxHR HQX", "dnxhd", (".mov", ".mkv"), (10,),
           {"profile": "dnxhr_hqx"}, ("422",), "yuv422p10le"),
    Preset("h264", "H.264", "libx264", (".mp4", ".mov", ".mkv"), (8,), _X264),
    Preset("h264_10bit", "H.264 10-bit", "libx264", (".mp4", ".mov", ".mkv"), (10,), _X264),
    Preset("h265", "H.265", "libx265", (".mp4", ".mov", ".mkv"), (8,), _X265),
    Preset("h265_10bit", "H.265 10-bit", "libx265", (".mp4", ".mov", ".mkv"), (10, 12), _X265),
    Preset("ffv1", "FFV1 (lossless)", "ffv1", (".mkv",), (8, 10, 12, 16),
           {"level": "3", "slicecrc": "1", "g": "1"}),
    # image sequences (io.sequence): one file per frame, numbered as the source's frames
    Preset("dpx", "DPX", "dpx", (".dpx",), (8, 10, 12, 16), {}),
    Preset("tiff", "TIFF", "tiff", (".tif", ".tiff"), (8, 16), {"compression_algo": "deflate"}),
    Preset("png", "PNG", "png", (".png",), (8, 16), {}),
    Preset("exr", "OpenEXR (half float)", "exr", (".exr",), (16,), {"format": "half", "compression": "zip16"}),
]}
# Each image preset's pixel format per bit depth, without and with alpha.
_IMAGE_FORMATS = {
    "dpx": {8: ("rgb24", "rgba"), 10: ("gbrp10le", "rgba64le"), 12: ("gbrp12le", "rgba64le"),
            16: ("rgb48le", "rgba64le")},
    "tiff": {8: ("rgb24", "rgba"), 16: ("rgb48le", "rgba64le")},
    "png": {8: ("rgb24", "rgba"), 16: ("rgb48be", "rgba64be")},
    "exr": {16: ("gbrpf32le", "gbrapf32le")},
}
IMAGE_EXTS = (".dpx", ".tif", ".tiff", ".png", ".exr")

CONTAINERS = (".mov", ".mp4", ".mkv")
log = logging.getLogger(__name__)

# Lets callers pass either a preset name or an ffmpeg encoder / family name.
_ALIASES = {"prores": "prores_hq", "prores_ks": "prores_hq", "prores_422_hq": "prores_hq", "dnxhd": "dnxhr_hqx",
            "dnxhr": "dnxhr_hqx", "libx264": "h264", "x264": "h264", "avc": "h264", "libx265": "h265",
            "x265": "h265", "hevc": "h265"}


def container_of(output_path: str) -> str:
    """The container extension ('.mov', '.mp4', '.mkv', or an image sequence's '.dpx' ...) of an output path;
    OutputError for others."""
    ext = os.path.splitext(output_path)[1].lower()
    if ext in IMAGE_EXTS:
        output_sequence(output_path)  # an image output must name the frames' number
        return ext
    if ext not in CONTAINERS:
        raise OutputError(f"unsupported output type '{ext or output_path}': use one of {', '.join(CONTAINERS)}, "
                          f"or an image sequence such as out.%04d.dpx ({', '.join(IMAGE_EXTS)})")
    return ext


def _default_preset(ext: str, source: VideoInfo) -> str:
    if ext in IMAGE_EXTS:
        return {".tif": "tiff"}.get(ext, ext[1:])
    if ext == ".mov":
        return "prores_4444" if source.has_alpha else "prores_hq"
    if ext == ".mkv":
        return "ffv1"
    return "h265" if source.codec in ("hevc", "h265") else "h264"


def _ffv1_pix_fmt(source: VideoInfo, depth: int) -> str:
    from vdiff_ofx.io.colour import is_yuv_format

    yuv = is_yuv_format(source.pix_fmt) and not source.pix_fmt.startswith("gray")
    if not yuv:
        if source.pix_fmt.startswith("gray"):
            return "gray" if depth == 8 else f"gray{depth}le"
        base = "gbrap" if source.has_alpha else "gbrp"
        if depth == 8:
            return "bgra" if source.has_alpha else "bgr0"
        return f"{base}{depth}le"
    chroma = source.chroma if source.chroma in ("420", "422", "444") else "444"
    base = f"yuva{chroma}p" if source.has_alpha else f"yuv{chroma}p"
    return base if depth == 8 else f"{base}{depth}le"


def choose_settings(output_path: str, source: VideoInfo, codec: str | None = None,
                    bit_depth: int | None = None, width: int | None = None) -> EncodeSettings:
    """Pick the encoder for ``output_path``: the preset named by ``codec`` or the default for the container.

    Bit depth follows the source (10-bit+ stays 10-bit+) unless ``bit_depth`` is given; ``width`` is the output's
    (after crop/resize/scale; the source's when None).
    """
    ext = container_of(output_path)
    name = _default_preset(ext, source) if codec is None else codec.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in PRESETS:
        raise OutputError(f"unknown codec '{codec}': use one of {', '.join(PRESETS)}")
    width = source.width if width is None else width
    if name == "prores_hq" and width % 2:  # see encode._check_size
        log.warning("ProRes 422 HQ cannot keep an odd width (%d): writing ProRes 4444, which can", width)
        name = "prores_4444"
    preset = PRESETS[name]
    if ext not in preset.containers:
        ok = ", ".join(p.name for p in PRESETS.values() if ext in p.containers)
        raise OutputError(f"{preset.label} cannot be written to {ext}: use {', '.join(preset.containers)} "
                          f"or one of {ok}")
    want = bit_depth if bit_depth is not None else max(8, source.bit_depth)
    if preset.codec in ("libx264", "libx265"):  # h264/h265 are families: the depth picks the preset
        if bit_depth is None and name.endswith("_10bit"):
            want = max(want, 10)
        fam = name.split("_")[0]
        name = fam if want <= 8 else fam + "_10bit"
        preset = PRESETS[name]
    fitting = [d for d in preset.depths if d >= want]
    if bit_depth is not None and bit_depth not in preset.depths and not fitting:
        raise OutputError(f"{preset.label} cannot write {bit_depth}-bit video "
                          f"(supports {', '.join(f'{d}-bit' for d in preset.depths)})")
    depth = fitting[0] if fitting else preset.depths[-1]

    options = dict(preset.options)
    if preset.fixed_pix_fmt:
        pix_fmt = preset.fixed_pix_fmt
        if name == "prores_4444" and source.has_alpha:
            pix_fmt = "yuva444p10le"
    elif preset.codec == "ffv1":
        pix_fmt = _ffv1_pix_fmt(source, depth)
    elif name in _IMAGE_FORMATS:
        pix_fmt = _IMAGE_FORMATS[name][depth][1 if source.has_alpha else 0]
    else:
        chroma = source.chroma if source.chroma in preset.chromas else "420"
        pix_fmt = f"yuv{chroma}p" if depth == 8 else f"yuv{chroma}p{depth}le"
    label = preset.label
    if preset.codec in ("libx264", "libx265") and depth > 8 and "bit" not in label:
        label = f"{label} {depth}-bit"
    return replace(EncodeSettings(preset.codec, pix_fmt, options, label), preset=name)
