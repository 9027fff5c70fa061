"""`vdiff analyze CLIP`: per-shot features as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from ..io.sequence import rate_arg
from .clip import analyse, recommend

COLUMNS = (("noise_sigma_rgb", "noise", "{:6.1f}"), ("grain", "grain", "{:5.2f}"), ("blockiness", "block", "{:6.2f}"),
           ("banding", "banding", "{:6.2f}"), ("qp", "qp", "{:6.1f}"),
           ("laplacian_var", "lapvar", "{:8.1f}"), ("edge_density", "edges", "{:6.3f}"),
           ("luma_p50", "luma50", "{:6.3f}"), ("saturation", "sat", "{:5.3f}"))


def cmd_analyze(args: argparse.Namespace) -> int:
    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty() and (done % 10 == 0 or done == total):
            sys.stderr.write(f"\ranalysing {done}/{total} frames")
            if done == total:
                sys.stderr.write("\n")

    from ..io.probe import probe

    result = analyse(args.clip, stride=args.stride, progress=progress, info=probe(args.clip, args.fps))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    scan = f"interlaced ({result.field_order})" if result.field_order else "progressive"
    print(f"{result.path}: {result.frames} frames {result.width}x{result.height} @ {result.frame_rate} {scan}, "
          f"{len(result.shots)} shot(s), cuts at {result.cuts or 'none'}")
    print(f"{'shot':>4} {'start':>6} {'end':>6} " + " ".join(f"{h:>8}" for _, h, _ in COLUMNS))
    for i, s in enumerate(result.shots):
        vals = " ".join(f"{fmt.format(s.features[k]) if k in s.features else '-':>8}" for k, _, fmt in COLUMNS)
        print(f"{i:>4} {s.start:>6} {s.end:>6} {vals}")
    rec = recommend(result)
    if rec["model"] is None:
        print(f"recommendation: none  ({rec['reason']})")
    else:
        print(f"recommendation: --model {rec['model']}"
              + (f" --strength {rec['strength']}" if rec["strength"] is not None else "") + f"  ({rec['reason']})")
    return 0


def register(sub: argparse._SubParsersAction, add_backend_args: Callable) -> None:  # noqa: ARG001
    a = sub.add_parser("analyze", help="shot cuts, noise, blockiness, banding, QP (H.264/H.265/VP9/AV1), sharpness "
                                       "and colour per shot")
    a.add_argument("clip")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.add_argument("--stride", type=int, default=0, help="feature every Nth frame (default: 5 per second)")
    a.add_argument("--fps", type=rate_arg, default=None, help="an image sequence's frame rate (default 24)")
    a.set_defaults(fn=cmd_analyze)
