"""Turn a client's job options into a pipeline Job, checking everything that can be checked before queueing,
so a bad request fails at submit with one line instead of minutes later in the queue."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..engine.enhancer import TTA_MODES
from ..engine.models import get_model
from ..engine.providers import Backend
from ..errors import InputError, OutputError, VdiffError
from ..io.codecs import choose_settings
from ..io.probe import VideoInfo, probe
from ..io.sequence import find_sequence, parse_rate
from ..ops.geometry import Flip, Rotate, output_aspect, output_size, parse_crop, parse_resize
from ..ops.ranges import resolve_range
from ..pipeline import Job, check_paths, plan_fields


def build_ops(ops: dict[str, Any] | None, width: int, height: int, sar: Fraction | None = None) -> list:
    """The same op order as the CLI: crop, rotate, flip, then resize (sized after the others)."""
    ops = ops or {}
    result: list = []
    if ops.get("crop"):
        result.append(parse_crop(str(ops["crop"])))
    rotate = int(ops.get("rotate") or 0)
    if rotate:
        if rotate % 90 or rotate % 360 == 0:
            raise VdiffError("ops.rotate takes 90, 180 or 270")
        result.append(Rotate(rotate % 360))
    if ops.get("flip"):
        if ops["flip"] not in ("h", "v"):
            raise VdiffError("ops.flip takes 'h' or 'v'")
        result.append(Flip(ops["flip"]))
    if ops.get("resize"):
        w, h = output_size(result, width, height)
        result.append(parse_resize(str(ops["resize"]), str(ops.get("interp") or "lanczos"), w, h,
                                   output_aspect(result, width, height, sar)))
    output_size(result, width, height)
    return result


def check_input(path: str, frame_rate: Fraction | None = None) -> VideoInfo:
    """An absolute path to a readable video file, or to a numbered image sequence (io.sequence: every file of its
    range present and readable)."""
    if not os.path.isabs(path):
        raise InputError(f"input must be an absolute path, got '{path}'")
    seq = find_sequence(path)
    files = [seq.path_of(n) for n in range(seq.first, seq.last + 1)] if seq else [path]
    if not os.path.exists(files[0]):
        raise InputError(f"input not found: {path}")
    if not os.path.isfile(files[0]):
        raise InputError(f"input is not a file: {path}")
    unreadable = [f for f in files if not os.access(f, os.R_OK)]
    if unreadable:
        raise InputError(f"input is not readable: {unreadable[0]}")
    return probe(path, frame_rate)


def check_output(source: str, output: str, overwrite: bool) -> None:
    if not os.path.isabs(output):
        raise OutputError(f"output must be an absolute path, got '{output}'")
    out = Path(output)
    try:
        check_paths(Path(source), out, overwrite)
    except OutputError as exc:
        raise OutputError(str(exc).replace("pass --overwrite", "set \"overwrite\": true")) from None


def build(input: str, output: str, model: str, options: dict[str, Any], backend: Backend | None = None,
          check_output_file: bool = True) -> tuple[Job, VideoInfo, int, int]:
    """Validate and build; returns (job, source info, start, end). Raises VdiffError with one clear line."""
    rate = parse_rate(options["frame_rate"]) if options.get("frame_rate") is not None else None
    info = check_input(input, rate)
    if check_output_file:
        check_output(input, output, bool(options.get("overwrite")))
    spec = None if model == "auto" else get_model(model)  # "auto": the analysis picks it when the job runs
    strength = options.get("strength")
    if strength is not None and strength != "auto" and spec is not None:
        if not spec.strength:
            raise VdiffError(f"model '{spec.name}' has no strength control; drop \"strength\"")
        if not spec.strength.min <= float(strength) <= spec.strength.max:
            raise VdiffError(f"strength {strength} is outside {spec.strength.min}..{spec.strength.max} "
                             f"for model '{spec.name}'")
    tile = options.get("tile")
    if tile is not None and int(tile) < 32:
        raise VdiffError(f"tile {tile} is too small (32 pixels at least)")
    tta = options.get("tta", 1)
    if tta not in TTA_MODES:
        raise VdiffError(f"tta {tta!r} must be one of {', '.join(map(str, TTA_MODES))}")
    start, end = resolve_range(options.get("start"), options.get("end"), info.frame_count, info.frame_rate,
                               info.start_timecode)
    choose_settings(output, info, options.get("codec"), options.get("bit_depth"))
    ops = build_ops(options.get("ops"), info.width, info.height, info.sample_aspect)
    job = Job(input=input, output=output, model=model, strength=strength, tile=tile, tta=tta,
              backend=backend or Backend(), codec=options.get("codec"), bit_depth=options.get("bit_depth"),
              start=start, end=end, ops=ops, overwrite=bool(options.get("overwrite")),
              copy_streams=bool(options.get("copy_streams", True)), fields=options.get("fields", "auto"),
              frame_rate=rate)
    plan_fields(info, job, spec.scale if spec else 1)  # an unknown mode, or "woven" with an upscaler, fails at submit
    return job, info, start, end
