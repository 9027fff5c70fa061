"""VapourSynth filter: ``enhance(clip, model=...)`` runs vdiff's Enhancer on every frame of a clip.

Use it in a .vpy (VapourSynth R81, Python 3.12)::

    import vapoursynth as vs
    from vdiff_ofx.vapoursynth import enhance
    enhance(clip, model="denoise", strength=10).set_output()

RGBS/RGBH clips go to the model as they are. YUV, GRAY and integer RGB are converted explicitly with
core.resize (matrix from ``matrix_in``, else the first frame's ``_Matrix`` prop, else BT.709; range from
``range_in`` or ``_Range``/``_ColorRange``, else limited) and converted back to the input format afterwards, so the
filter is a drop-in. Temporal models get their neighbour frames from the same clip, repeated at the clip's
ends and at shot cuts (VapourSynth's ``_SceneChangePrev`` / ``_SceneChangeNext`` frame props, as scene-change
filters such as misc.SCDetect set them, or ``cuts``), so a window never spans two shots, as in `vdiff enhance`.
Only this module imports vapoursynth; nothing else in vdiff needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import vapoursynth as vs

from .analysis.cuts import shot_positions
from .engine.enhancer import Enhancer
from .engine.providers import Backend
from .ops.fields import by_field, check_field_mode, resolve_mode

core = vs.core

# _Matrix frame-prop values (ITU-T H.273) -> core.resize matrix names
_MATRIX = {1: "709", 4: "fcc", 5: "470bg", 6: "170m", 7: "240m", 8: "ycgco", 9: "2020ncl", 10: "2020cl"}


def _backend(backend: Backend | str | None) -> Backend | None:
    if isinstance(backend, str):
        return Backend(providers=[p.strip() for p in backend.split(",")])
    return backend


def _colour(clip: vs.VideoNode, matrix_in: str | None, range_in: str | None) -> tuple[str, str]:
    """The matrix and range to convert with, decided once so the way back uses exactly the same ones."""
    props = clip.get_frame(0).props if (matrix_in is None or range_in is None) else {}
    matrix = matrix_in or _MATRIX.get(int(props.get("_Matrix", 2)), "709")
    if range_in:
        rng = range_in
    elif "_Range" in props:  # R81: _Range, 1 = full, 0 = limited
        rng = "full" if int(props["_Range"]) == 1 else "limited"
    else:  # older scripts' _ColorRange: 0 = full, 1 = limited
        rng = "full" if int(props.get("_ColorRange", 1)) == 0 else "limited"
    return matrix, rng


def _to_rgbs(clip: vs.VideoNode, matrix: str, rng: str) -> vs.VideoNode:
    fmt = clip.format
    if fmt.color_family == vs.RGB:
        if fmt.id in (vs.RGBS, vs.RGBH):
            return clip
        # a stray YUV _Matrix prop on an RGB clip makes zimg refuse it, whatever matrix_in says
        return core.resize.Point(core.std.RemoveFrameProps(clip, "_Matrix"), format=vs.RGBS)
    if fmt.color_family == vs.GRAY:
        gray = core.resize.Point(clip, format=vs.GRAYS, range_in_s=rng, range_s="full")
        return core.std.ShufflePlanes([gray] * 3, [0, 0, 0], vs.RGB)
    # centre-sited bilinear chroma, as vdiff's own decoder does, so results match `vdiff enhance` closely
    return core.resize.Bilinear(clip, format=vs.RGBS, matrix_in_s=matrix, range_in_s=rng, chromaloc_in_s="center")


def _from_rgbs(rgb: vs.VideoNode, like: vs.VideoNode, matrix: str, rng: str) -> vs.VideoNode:
    fmt = like.format
    if rgb.format.id == fmt.id:
        return rgb
    if fmt.color_family == vs.RGB:
        return core.resize.Point(core.std.RemoveFrameProps(rgb, "_Matrix"), format=fmt.id)
    if fmt.color_family == vs.GRAY:
        luma = core.resize.Point(rgb, format=vs.YUV444PS, matrix_s=matrix)
        return core.resize.Point(core.std.ShufflePlanes(luma, 0, vs.GRAY), format=fmt.id, range_in_s="full",
                                 range_s=rng)
    # Spline36 down: the sharpest common kernel, so zimg's 4:2:0 round trip loses least (bilinear loses ~40% more)
    return core.resize.Spline36(rgb, format=fmt.id, matrix_s=matrix, range_s=rng, chromaloc_s="center",
                                dither_type="none")


def _shifted(clip: vs.VideoNode, d: int) -> vs.VideoNode:
    """Frame n of the result is frame clamp(n + d) of ``clip``."""
    n = clip.num_frames
    if d == 0:
        return clip
    if d < 0:
        k = min(-d, n)
        return (clip[0] * k + clip[: n - k]) if n > k else clip[0] * n
    k = min(d, n)
    return (clip[k:] + clip[-1] * k) if n > k else clip[-1] * n


def _planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p], dtype=np.float32) for p in range(3)], axis=-1)


def _in_shot(window: list[vs.VideoFrame], n: int, cuts: frozenset[int]) -> list[int]:
    """For each position of the window around frame ``n``, the position whose frame to use (analysis.cuts
    .shot_positions), the cuts told by the scene-change props or ``cuts``."""
    half = len(window) // 2

    def cut_before(i: int) -> bool:
        return (int(window[i].props.get("_SceneChangePrev", 0)) == 1
                or int(window[i - 1].props.get("_SceneChangeNext", 0)) == 1 or n + i - half in cuts)

    return shot_positions(len(window), cut_before)


def enhance(clip: vs.VideoNode, model: str = "denoise", strength: float | None = None, tile: int | None = None,
            backend: Backend | str | None = None, matrix_in: str | None = None,
            range_in: str | None = None, tta: int = 1, fields: str = "auto",
            cuts: Iterable[int] | None = None) -> vs.VideoNode:
    """``clip`` enhanced by ``model`` (scaled by the model's factor), in the input's own format.

    ``cuts``: frame numbers that start a new shot (``vdiff analyze --json``'s "cuts"), besides the scene-change
    props; a temporal model's window stops at them.

    Frames whose ``_FieldBased`` prop says interlaced (1 bottom, 2 top field first) go through as ``fields`` says
    (as `vdiff enhance --fields`: "auto" whole frames at 1x, each field apart for upscalers); core.resize
    already resamples their chroma within each field.
    """
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise vs.Error("vdiff.enhance: clips with variable format or size are not supported")
    check_field_mode(fields)
    enhancer = Enhancer(model, _backend(backend), tile=tile, strength=strength, tta=tta)
    matrix, rng = _colour(clip, matrix_in, range_in)
    rgb = _to_rgbs(clip, matrix, rng)
    scale, half = enhancer.scale, enhancer.window // 2
    blank = core.std.BlankClip(rgb, width=rgb.width * scale, height=rgb.height * scale, keep=True)
    neighbours = [_shifted(rgb, d) for d in range(-half, half + 1)]
    shot_starts = frozenset(int(c) for c in cuts or ())

    def run(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        interlaced = int(f[1 + half].props.get("_FieldBased", 0)) in (1, 2)
        mode = resolve_mode(fields, interlaced, scale, enhancer.spec.name)
        window = f[1:]
        frames = [_planes(window[i]) for i in _in_shot(window, n, shot_starts)]
        out = by_field(enhancer.process, frames) if mode == "separate" else enhancer.process(frames)
        fout = f[0].copy()
        for p in range(3):
            np.asarray(fout[p])[...] = out[..., p]
        props: Any = f[1 + half].props
        for k in props:
            if k == "_Matrix":  # the frames are RGB now; a YUV matrix prop would make core.resize refuse them
                continue
            try:
                fout.props[k] = props[k]
            except (TypeError, vs.Error):
                pass
        return fout

    result = core.std.ModifyFrame(blank, [blank, *neighbours], run)
    return _from_rgbs(result, clip, matrix, rng)
