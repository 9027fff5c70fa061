"""Interlaced frames hold two pictures taken half a frame apart: enhance each field on its own, weave them back.

Why: a model that sees the woven frame takes the combing between the fields for texture or noise and filters
across it, mixing two instants (ghosts on motion, softened interlace); per field it sees one picture, and the
output stays interlaced with the source's field order, as an interlaced timeline expects. That costs the model
half the vertical resolution, so for a 1x model whole woven frames measure better unless the motion is very fast
(benchmarks/bench_interlaced.py); the pipeline's field modes (FIELD_MODES) choose between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import VdiffError

if TYPE_CHECKING:
    import numpy as np

# How an interlaced source goes through the model (pipeline.plan_fields): the CLI's --fields, the API's "fields".
FIELD_MODES = ("auto", "separate", "woven", "progressive")

# FFmpeg's AVFieldOrder values: top/bottom field coded first, then displayed first
FIELD_ORDERS = {2: "tt", 3: "bb", 4: "tb", 5: "bt"}
# The other field first, same tag flavour ("tb"/"bt" are what FFmpeg writes for interleaved ProRes/H.264).
_SWAPPED = {"tt": "bb", "bb": "tt", "tb": "bt", "bt": "tb"}


def check_field_mode(mode: str) -> None:
    """Refuse an unknown field mode before a job spends any time (numpy-free: the CLI's parser uses FIELD_MODES)."""
    if mode not in FIELD_MODES:
        raise VdiffError(f"fields {mode!r} must be one of {', '.join(FIELD_MODES)}")


def resolve_mode(mode: str, interlaced: bool, scale: int, model: str) -> str:
    """What ``mode`` means for a source (interlaced or not) and a model of ``scale``: "separate", "woven" or
    "progressive" (a progressive source, or one declared so, is plain frames).

    "auto" takes whole woven frames at scale 1 (measured better: the model keeps the full vertical resolution,
    see benchmarks/bench_interlaced.py) and separate fields above; "woven" is refused for an upscaler, since an
    upscaled woven frame mixes its two fields.
    """
    check_field_mode(mode)
    if not interlaced or mode == "progressive":
        return "progressive"
    mode = mode if mode != "auto" else "separate" if scale > 1 else "woven"
    if mode == "woven" and scale > 1:
        raise VdiffError(f"fields 'woven' cannot be used with model '{model}' (scale {scale}): upscaling "
                         f"a woven frame mixes its two fields; use 'separate' (or 'progressive' for a PsF source)")
    return mode


def top_first(order: str) -> bool:
    """Whether ``order`` shows the top field first: FFmpeg tags top-first interleaved frames "tb", not "tt"."""
    return order in ("tt", "tb")


def with_first(order: str | None, top: bool) -> str:
    """``order`` corrected to show the top (or bottom) field first; "tt"/"bb" when there is no tag."""
    if order is None:
        return "tt" if top else "bb"
    return order if top_first(order) == top else _SWAPPED[order]


def by_field(process: Callable[[Sequence[np.ndarray]], np.ndarray], frames: Sequence[np.ndarray]) -> np.ndarray:
    """``process`` the top fields (even rows) of ``frames``, then the bottom fields, and weave the results.

    A temporal model gets the same-parity fields of the neighbouring frames, which are one frame period apart.
    Frames must have an even height (the results of a 2x model then weave into exactly twice the frame).
    """
    import numpy as np

    if frames[0].shape[0] % 2:
        raise ValueError(f"field processing needs an even frame height, got {frames[0].shape[0]}")
    top = process([f[0::2] for f in frames])
    bottom = process([f[1::2] for f in frames])
    out = np.empty((top.shape[0] + bottom.shape[0],) + top.shape[1:], dtype=top.dtype)
    out[0::2], out[1::2] = top, bottom
    return out
