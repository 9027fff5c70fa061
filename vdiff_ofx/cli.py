"""The `vdiff` command: enhance, models, doctor, bench, demo. Errors are one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import Cancelled, VdiffError
from .io.sequence import first_number, output_label, rate_arg
from .ops.fields import FIELD_MODES

log = logging.getLogger("vdiff_ofx.cli")

Command = Callable[[argparse.Namespace], int]


def _backend(args: argparse.Namespace):
    from .engine.providers import Backend

    providers = [p.strip() for p in args.provider.split(",")] if getattr(args, "provider", None) else None
    return Backend(providers=providers, device_id=args.device, fp16=not args.no_fp16, threads=args.threads)


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--provider", help="comma list: trt,cuda,coreml,dml,cpu (default: best available, CPU last)")
    g.add_argument("--device", type=int, default=0, help="GPU index")
    g.add_argument("--no-fp16", action="store_true", help="keep fp32 on GPU providers")
    g.add_argument("--threads", type=int, default=0, help="CPU threads for inference (0: all)")


def _ops(args: argparse.Namespace, width: int, height: int, sar: Fraction | None = None) -> list:
    from .ops.geometry import Flip, Rotate, output_aspect, output_size, parse_crop, parse_resize

    ops: list = []
    if args.crop:
        ops.append(parse_crop(args.crop))
    if args.rotate:
        if args.rotate % 90:
            raise VdiffError("--rotate takes 90, 180 or 270")
        ops.append(Rotate(args.rotate))
    if args.flip:
        ops.append(Flip(args.flip))
    if args.resize:
        w, h = output_size(ops, width, height)
        ops.append(parse_resize(args.resize, args.interp, w, h, output_aspect(ops, width, height, sar)))
    output_size(ops, width, height)
    return ops


def _strength(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'auto'") from None


def cmd_enhance(args: argparse.Namespace) -> int:
    from .io.probe import probe
    from .pipeline import Job, run
    from .progress import TerminalBar

    info = probe(args.input, args.fps)
    if args.fps and info.sequence is None:
        log.warning("--fps is for image sequences; %s keeps its own %s fps", args.input, info.frame_rate)
    stem = info.sequence.name() if info.sequence else Path(args.input).stem
    output = args.output or str(Path(args.input).with_name(f"{stem}_vdiff.mov"))
    job = Job(
        input=args.input, output=output, model=args.model, strength=args.strength, tile=args.tile,
        overlap=args.overlap, tta=args.tta, backend=_backend(args), codec=args.codec, bit_depth=args.bit_depth,
        start=args.start, end=args.end, ops=_ops(args, info.width, info.height, info.sample_aspect),
        overwrite=args.overwrite,
        copy_streams=not args.no_audio, fields=args.fields, frame_rate=args.fps,
    )
    cancel = threading.Event()
    bar = None if args.quiet else TerminalBar(Path(args.input).name)
    result = _run_cancellable(lambda: run(job, bar, cancel), cancel)
    shown = output_label(result.output, first_number(info.sequence, result.start), result.frames)
    print(f"wrote {shown}: {result.frames} frames {result.width}x{result.height} "
          f"{result.settings.label}, {result.fps:.2f} fps on {result.provider}")
    return 0


def _run_cancellable(fn: Callable, cancel: threading.Event):
    """Run ``fn`` with Ctrl-C / SIGTERM mapped to a cancel the pipeline honours within a second."""
    def handler(signum, frame):  # noqa: ARG001 - signal signature
        cancel.set()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        return fn()
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def cmd_models(args: argparse.Namespace) -> int:
    from .engine import models

    if args.action == "add":
        if not args.path or not args.name:
            raise VdiffError("usage: vdiff models add FILE.onnx --name NAME [--task TASK]")
        spec = models.add_user_model(Path(args.path), args.name, args.task, args.description or "")
        print(f"added '{spec.name}': scale {spec.scale}, window {spec.temporal_window}, sha256 {spec.sha256[:12]}...")
        return 0
    if args.action == "remove":
        if not models.remove_user_model(args.name or args.path or ""):
            raise VdiffError(f"no user model named '{args.name or args.path}'")
        print(f"removed '{args.name or args.path}' (the file was left in place)")
        return 0
    reg = models.registry()
    rows = []
    failed = 0
    for spec in reg.values():
        status = ""
        if args.action == "verify":
            try:
                spec.verify()
                status = "ok"
            except VdiffError as exc:
                status = f"FAILED: {exc}"
                failed += 1
        rows.append((spec, status))
    if args.json:
        print(json.dumps([{"name": s.name, "task": s.task, "scale": s.scale, "window": s.temporal_window,
                           "file": str(s.file), "sha256": s.sha256, "source": s.source,
                           "strength": bool(s.strength), "description": s.description, "status": st}
                          for s, st in rows], indent=2))
    else:
        nw = max([18] + [len(s.name) for s, _ in rows])
        print(f"{'name':<{nw}} {'task':<9} {'scale':>5} {'window':>6}  {'source':<8} description")
        for s, st in rows:
            print(f"{s.name:<{nw}} {s.task:<9} {s.scale:>5} {s.temporal_window:>6}  {s.source:<8} {s.description}"
                  + (f"  [{st}]" if st else ""))
    return 1 if failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    text, ok = report(args.model, _backend(args))
    print(text)
    return 0 if ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    run_bench(args.model, _backend(args), args.size, args.tiles, args.repeat)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    cancel = threading.Event()
    folder = _run_cancellable(lambda: run_demo(args.out, args.model, args.sigma, _backend(args), cancel), cancel)
    print(f"demo results in {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdiff", description="Enhance video: denoise, de-block, upscale.")
    p.add_argument("--version", action="version", version=f"vdiff {__version__}")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("enhance", help="enhance a clip into a new file")
    e.add_argument("input")
    e.add_argument("-o", "--output", help="output file (.mov .mp4 .mkv); default <input>_vdiff.mov")
    e.add_argument("-m", "--model", default="denoise", help="model name (see `vdiff models`) or auto")
    e.add_argument("-s", "--strength", type=_strength, help="model strength: noise sigma on 0-255 for denoise models (0 leaves the frame "
                        "untouched), detail %% for upscale2x / upscale4x (0 for aliased sources, 100 for soft ones), "
                        "amount %% of the correction for deblock models; auto measures the noise of the clip")
    e.add_argument("--tile", type=int, help="tile size in pixels (default: from free memory)")
    e.add_argument("--overlap", type=int, help="tile overlap in pixels")
    e.add_argument("--tta", type=int, default=1,
                   help="average 1/2/4/8 flipped views per frame: final-render quality for that many times the time")
    e.add_argument("-c", "--codec", help="prores_hq, prores_4444, dnxhr_hqx, h264, h264_10bit, h265, h265_10bit, ffv1")
    e.add_argument("--bit-depth", type=int, choices=(8, 10, 12, 16), help="output bit depth (default: source's)")
    e.add_argument("--start", help="first frame (number or source timecode HH:MM:SS:FF)")
    e.add_argument("--end", help="end frame, exclusive (number or timecode)")
    e.add_argument("--crop", help="W:H[:X:Y] before the model")
    e.add_argument("--resize", help="WxH, Wx-1 or N%% before the model")
    e.add_argument("--interp", default="lanczos", help="resize interpolation: lanczos bicubic bilinear area nearest")
    e.add_argument("--rotate", type=int, default=0, help="rotate clockwise by 90, 180 or 270")
    e.add_argument("--flip", choices=("h", "v"))
    e.add_argument("--fields", choices=FIELD_MODES, default="auto",
                   help="interlaced sources: 'woven' runs whole frames and keeps the field order (best for 1x "
                        "models: denoise measured 1.5-1.7 dB above 'separate' on 50i, still 0.4-0.6 dB with the "
                        "fields 4 frames apart); 'separate' enhances each field apart and weaves them back "
                        "(needed for upscalers; ahead at 1x only when the fields are ~8 frames apart); "
                        "'progressive': the source is progressive (PsF or wrongly flagged); "
                        "'auto' (default): woven at 1x, separate for upscalers")
    e.add_argument("--no-audio", action="store_true", help="do not copy audio and other streams")
    e.add_argument("--fps", type=rate_arg, default=None,
                   help="an image sequence's frame rate (input shot_[1001-1100].dpx, shot.%%04d.dpx or "
                        "shot.####.dpx; default 24); movies keep their own")
    e.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_backend_args(e)
    e.set_defaults(fn=cmd_enhance)

    m = sub.add_parser("models", help="list, verify, add or remove models")
    m.add_argument("action", nargs="?", default="list", choices=("list", "verify", "add", "remove"))
    m.add_argument("path", nargs="?", help="ONNX file (add) or name (remove)")
    m.add_argument("--name")
    m.add_argument("--task", default="custom")
    m.add_argument("--description")
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_models)

    d = sub.add_parser("doctor", help="providers, GPU, versions, and where a model really runs")
    d.add_argument("-m", "--model", default="denoise")
    _add_backend_args(d)
    d.set_defaults(fn=cmd_doctor)

    b = sub.add_parser("bench", help="megapixels/s per provider and tile size")
    b.add_argument("-m", "--model", default="denoise")
    b.add_argument("--size", default="1920x1080")
    b.add_argument("--tiles", default="0,256,512", help="comma list of tile sizes (0: whole frame)")
    b.add_argument("--repeat", type=int, default=3)
    _add_backend_args(b)
    b.set_defaults(fn=cmd_bench)

    dm = sub.add_parser("demo", help="enhance the bundled sample clip and write a side-by-side + PSNR")
    dm.add_argument("--out", help="folder for the results (default: a new one under the user's data folder)")
    dm.add_argument("-m", "--model", default="denoise")
    dm.add_argument("--sigma", type=float, default=20.0, help="noise added to the clean sample (0-255 scale)")
    _add_backend_args(dm)
    dm.set_defaults(fn=cmd_demo)

    for module in ADAPTERS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:  # that adapter is not part of this build
                continue
            raise
        mod.register(sub, _add_backend_args)
    return p


# Adapters add their own subcommands: each module has register(subparsers, add_backend_args), and its
# handlers receive the parsed args (use cli._backend(args) for the Backend).
ADAPTERS = (
    "vdiff_ofx.analysis.command",   # vdiff analyze
    "vdiff_ofx.server.command",     # vdiff serve
    "vdiff_ofx.pipe",               # vdiff pipe
    "vdiff_ofx.resolve_install",    # vdiff install-resolve
    "vdiff_ofx.ofx_install",        # vdiff install-ofx
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="vdiff: %(message)s")
    try:
        return args.fn(args)
    except Cancelled as exc:
        print(f"vdiff: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("vdiff: cancelled", file=sys.stderr)
        return 130
    except VdiffError as exc:
        print(f"vdiff: {exc}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print("vdiff: out of memory; try a smaller --tile", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
