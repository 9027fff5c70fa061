"""End-to-end fps of `vdiff enhance` vs the model's pure inference rate on the same frames, same process.

The pipeline runs decode, inference and encode concurrently, so the ratio shows how much the I/O stages cost
on top of the model (target >= 0.85 on a 2-core CPU). CPU-s/frame counts all threads.

    python benchmarks/bench_pipeline.py [--model denoise] [--size 1920x1080] [--frames 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vdiff_ofx.engine.enhancer import Enhancer  # noqa: E402
from vdiff_ofx.io.codecs import choose_settings  # noqa: E402
from vdiff_ofx.io.decode import decode_frames  # noqa: E402
from vdiff_ofx.io.encode import Encoder  # noqa: E402
from vdiff_ofx.io.probe import probe  # noqa: E402
from vdiff_ofx.demo import sample_clip  # noqa: E402
from vdiff_ofx.ops.geometry import Resize  # noqa: E402
from vdiff_ofx.parallel import io_workers  # noqa: E402
from vdiff_ofx.pipeline import Job, run  # noqa: E402


def make_source(folder: Path, width: int, height: int, frames: int) -> Path:
    """The bundled sample scaled to the benchmark size, as H.264 (what editors usually receive)."""
    info = probe(str(sample_clip()))
    src = folder / f"bench_{width}x{height}.mp4"
    resize = Resize(width, height, "bicubic")
    settings = choose_settings(str(src), info, "h264")
    with Encoder(str(src), info, settings, width, height, copy_streams=False) as enc:
        for f in decode_frames(info, 0, frames):
            enc.write(resize(f.rgb), f.pts)
    return src


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="denoise")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--io-threads", default="0", help="comma list of Job.io_threads to run (0: auto); e.g. 1,0")
    ap.add_argument("--output", default=".mov", help="output extension/codec family (.mov: ProRes 422 HQ)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = make_source(folder, width, height, args.frames)
        frames = [f.rgb for f in decode_frames(probe(str(src)))]
        enh = Enhancer(args.model)
        enh(frames[0])  # warm-up, as the pipeline's session is warm too
        t, c = time.perf_counter(), time.process_time()
        for i in range(len(frames)):
            enh.process([frames[min(max(i + k, 0), len(frames) - 1)] for k in range(-(enh.window // 2),
                                                                                    enh.window // 2 + 1)])
        pure = len(frames) / (time.perf_counter() - t)
        pure_cpu = (time.process_time() - c) / len(frames)
        rows = []
        for threads in [int(v) for v in args.io_threads.split(",")]:
            t, c = time.perf_counter(), time.process_time()
            result = run(Job(str(src), str(folder / f"out{len(rows)}{args.output}"), model=args.model,
                             io_threads=threads), enhancer=enh)
            wall = time.perf_counter() - t
            rows.append((threads, result.frames / wall, (time.process_time() - c) / result.frames))
        print(f"\nmodel {args.model} on {enh.session.provider}, {width}x{height}, {len(frames)} frames, "
              f"output {result.settings.label}")
        print(f"{'stage':<40} {'fps':>8} {'CPU-s/frame':>12} {'ratio':>7}")
        print(f"{'inference only (in memory)':<40} {pure:8.3f} {pure_cpu:12.3f} {1:7.3f}")
        for threads, e2e, e2e_cpu in rows:
            label = f"end to end, io threads {threads or f'auto ({io_workers()})'}"
            print(f"{label:<40} {e2e:8.3f} {e2e_cpu:12.3f} {e2e / pure:7.3f}")


if __name__ == "__main__":
    main()
