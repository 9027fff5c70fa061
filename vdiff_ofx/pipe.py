"""`vdiff pipe`: y4m on stdin -> enhanced y4m on stdout, one frame at a time, for ffmpeg pipelines::

    ffmpeg -i in.mov -f yuv4mpegpipe - | vdiff pipe --model denoise | ffmpeg -i - -c:v prores_ks out.mov

Output keeps the input's y4m colourspace, bit depth and header fields (W/H scaled for upscalers). YUV<->RGB
uses the same float32 code as `vdiff enhance` (vdiff_ofx.io.colour), BT.709 unless ``--matrix`` says
otherwise, range from XCOLORRANGE (limited when absent). Nothing but y4m reaches stdout: file descriptor 1 is
pointed at stderr while the model runs, so a stray print from any library cannot corrupt the stream.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import BinaryIO

import numpy as np
from av.video.frame import VideoFrame

from .analysis.cuts import within_shot
from .errors import InputError, OutputError
from .io.colour import frame_to_rgb, rgb_to_frame
from .ops.fields import FIELD_MODES, by_field, resolve_mode
from .y4m import Y4MHeader, read_frames, read_header, write_frame

MATRICES = ("bt709", "bt470bg", "smpte170m", "smpte240m", "bt2020nc", "fcc")


def colour_of(header: Y4MHeader, matrix: str | None) -> tuple[str, str]:
    """(matrix, range) for a stream: BT.709 unless overridden; range from XCOLORRANGE, else limited."""
    tagged = (header.tag("XCOLORRANGE") or "").upper()
    return matrix or "bt709", "pc" if tagged == "FULL" else "tv"


def interlaced(header: Y4MHeader) -> bool:
    """y4m's ``I`` field: ``It``/``Ib`` top/bottom field first (``Ip`` progressive, ``Im`` mixed: per frame)."""
    return (header.tag("I") or "p")[:1] in ("t", "b")


def planes_to_rgb(planes: list[np.ndarray], header: Y4MHeader, matrix: str, rng: str,
                  fields: bool = False) -> np.ndarray:
    """Planes -> float32 RGB(A) through vdiff_ofx.io.colour, so results match `vdiff enhance` bit for bit
    (``fields``: interlaced, 4:2:0 chroma resampled within each field)."""
    frame = VideoFrame(header.width, header.height, header.pix_fmt)
    for plane, values in zip(frame.planes, planes):
        buf = np.zeros((plane.height, plane.line_size // values.itemsize), values.dtype)
        buf[:, : plane.width] = values
        plane.update(buf)
    return frame_to_rgb(frame, matrix, rng, fields)


def rgb_to_planes(rgb: np.ndarray, header: Y4MHeader, matrix: str, rng: str,
                  fields: bool = False) -> list[np.ndarray]:
    frame = rgb_to_frame(rgb, header.pix_fmt, matrix, rng, fields)
    out = []
    for plane, (h, w) in zip(frame.planes, header.plane_shapes()):
        a = np.frombuffer(plane, dtype=header.dtype).reshape(plane.height, plane.line_size // header.dtype.itemsize)
        out.append(a[:h, :w])
    return out


def windows(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Temporal windows centred on each frame, edge frames repeated at both ends (as `vdiff enhance` does);
    holds only ``size`` frames, so memory stays bounded however long the stream."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    buf: collections.deque[np.ndarray] = collections.deque([first] * (size // 2 + 1), maxlen=size)
    total = 1
    yielded = 0
    if len(buf) == size:  # window 1: the first frame is already a full window
        yielded += 1
        yield list(buf)
    for f in it:
        total += 1
        buf.append(f)
        if len(buf) == size:
            yielded += 1
            yield list(buf)
    while yielded < total:
        buf.append(buf[-1])
        if len(buf) == size:
            yielded += 1
            yield list(buf)


class _Progress:
    """Frames and fps on stderr: a rewritten line on a terminal, a line every 5 s otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.tty = quiet, sys.stderr.isatty()
        self.t0 = self.last = time.monotonic()

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not final and now - self.last < (0.5 if self.tty else 5.0)):
            return
        self.last = now
        fps = done / max(now - self.t0, 1e-9)
        end = "\n" if final or not self.tty else ""
        lead = "\r" if self.tty else ""
        print(f"{lead}vdiff pipe: {done} frames, {fps:.2f} fps", end=end, file=sys.stderr,
              flush=True)


def run_pipe(src: BinaryIO, dst: BinaryIO, process: Callable[[list[np.ndarray]], np.ndarray], window: int,
             scale: int, matrix: str | None = None, progress: Callable[..., None] | None = None,
             fields: str = "auto", model: str = "model") -> int:
    """Stream ``src`` y4m through ``process`` (a window of float RGB frames -> one) into ``dst``; frame count.

    An interlaced stream (``It``/``Ib``) goes through as ``fields`` says (ops.fields.resolve_mode) and stays
    interlaced; "progressive" rewrites the header to ``Ip``."""
    header = read_header(src)
    mode = resolve_mode(fields, interlaced(header), scale, model)
    if mode == "separate" and header.height % 2:
        raise InputError(f"fields 'separate' needs an even frame height, the stream is {header.height} high")
    woven = mode != "progressive"
    mat, rng = colour_of(header, matrix)
    out_header = header.resized(header.width * scale, header.height * scale)
    if interlaced(header) and not woven:
        out_header = replace(out_header, params=tuple("Ip" if p[:1] == "I" else p for p in out_header.params))
    dst.write(out_header.encode())
    rgb_frames = (planes_to_rgb(p, header, mat, rng, woven) for p in read_frames(src, header))
    if mode == "separate":
        process = functools.partial(by_field, process)
    done = 0
    for win in windows(rgb_frames, window):
        if window > 1:  # a stream comes without its cuts: the window stops at a hard cut inside it (analysis.cuts)
            win = [win[i] for i in within_shot(win)]
        write_frame(dst, rgb_to_planes(process(win), out_header, mat, rng, woven), out_header)
        done += 1
        if progress:
            progress(done)
    dst.flush()
    return done


def cmd_pipe(args: argparse.Namespace) -> int:
    from .cli import _backend
    from .engine.enhancer import Enhancer

    if sys.stdin.isatty():
        raise InputError("vdiff pipe reads y4m on stdin, e.g. ffmpeg -i in.mov -f yuv4mpegpipe - | vdiff pipe ...")
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    os.dup2(2, 1)  # anything else that writes to stdout now lands on stderr
    sys.stdout = sys.stderr
    enhancer = Enhancer(args.model, _backend(args), tile=args.tile, strength=args.strength, tta=args.tta)
    progress = _Progress(args.quiet)
    try:
        n = run_pipe(sys.stdin.buffer, out, enhancer.process, enhancer.window, enhancer.scale, args.matrix, progress,
                     args.fields, enhancer.spec.name)
    except BrokenPipeError:
        raise OutputError("the program reading vdiff's output closed the pipe") from None
    finally:
        try:
            out.close()
        except BrokenPipeError:
            pass
    progress(n, final=True)
    return 0


def register(subparsers, add_backend_args: Callable[[argparse.ArgumentParser], None]) -> None:
    p = subparsers.add_parser("pipe", help="enhance a y4m stream: stdin -> stdout (ffmpeg -f yuv4mpegpipe)")
    p.add_argument("-m", "--model", default="denoise", help="model name (see `vdiff models`)")
    p.add_argument("-s", "--strength", type=float, help="model strength: noise sigma on 0-255 (denoise), detail %% (upscale2x, upscale4x)")
    p.add_argument("--tile", type=int, help="tile size in pixels (default: from free memory)")
    p.add_argument("--tta", type=int, default=1, help="average 1/2/4/8 flipped views per frame (slower, cleaner)")
    p.add_argument("--matrix", choices=MATRICES, help="YUV matrix of the stream (default bt709; y4m carries none)")
    p.add_argument("--fields", choices=FIELD_MODES, default="auto",
                   help="an interlaced stream (y4m It/Ib): as `vdiff enhance --fields`")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_backend_args(p)
    p.set_defaults(fn=cmd_pipe)
