"""Frames per second through the OpenFX plugin (headless host -> plugin -> frame server process) versus the
engine in-process, at 1080p.

Rows (best of --repeat, runs interleaved so other load on a shared machine hits every row alike):

* engine in-process: ``Enhancer.process`` on a float RGBA frame in this process;
* OFX float RGBA / OFX 16-bit RGBA: a full-frame render action through the plugin, which copies the host
  image into shared memory, asks the server to PROCESS it and copies the result into the output image;
* ratio: plugin fps / in-process fps (1.0 = the plugin costs nothing).

    python benchmarks/bench_ofx.py [--size 1920x1080] [--repeat 3] [--threads 2] [--provider cpu] [--model cnn]

Uses the throwaway kit model 'cnn' (tests/onnx_kit.py) unless --model names one in the project manifest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "ofx" / "host")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--provider", default="cpu")
    ap.add_argument("--model", default="cnn")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    tmp = Path(tempfile.mkdtemp(prefix="vdiff-bench-ofx-"))
    sock = Path("/tmp") / f"vdiff-bofx-{os.getpid()}.sock"
    try:
        if args.model == "cnn":
            import onnx_kit

            os.environ["VDIFF_MANIFEST"] = str(onnx_kit.standard_set(tmp / "kit"))
        os.environ["VDIFF_CONFIG_DIR"] = str(tmp / "config")
        os.environ["VDIFF_FRAMES_SOCKET"] = str(sock)
        (tmp / "config").mkdir()
        return run(args, w, h, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        sock.unlink(missing_ok=True)


def run(args, w: int, h: int, tmp: Path) -> int:
    import cv2
    from ofxhost import OfxHost, blank, kOfxStatOK, to_ofx
    from server_proc import FrameServerProcess

    from vdiff_ofx import ofx_install
    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.providers import Backend
    from vdiff_ofx.io.decode import decode_frames
    from vdiff_ofx.io.probe import probe

    bundle = ofx_install.locate_or_build()
    info = probe(str(ROOT / "vdiff_ofx" / "data" / "sample.mov"))
    rgb = next(iter(decode_frames(info, 0, 1))).rgb[..., :3]
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1).astype(np.float32)
    rgba = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], -1)
    rgba16 = np.round(rgba * 65535).astype(np.uint16)

    server = FrameServerProcess(tmp / "config", dict(os.environ), threads=args.threads)
    server.start()
    host = OfxHost(bundle.parent / "libvdiff_ofxhost.so", ofx_install.bundle_binary(bundle))
    try:
        assert host.create_instance() == kOfxStatOK
        opts = host.options("model")
        host.set_param("model", next(i for i, o in enumerate(opts) if o.split(" ")[0] == args.model))
        enh = Enhancer(args.model, Backend(providers=args.provider.split(","), threads=args.threads))

        src_f, out_f = to_ofx(rgba), blank(w, h, 4, np.float32)
        src_u, out_u = to_ofx(rgba16), blank(w, h, 4, np.uint16)

        def engine() -> None:
            enh.process([rgba])

        def plugin(src, out, dtype) -> None:
            host.clear_frames()
            host.set_clip(dtype, 4)
            host.add_frame(0, src)
            st = host.render(0, (0, 0, w, h), out)
            if st != kOfxStatOK:
                raise RuntimeError(f"render failed ({st}): {host.messages()}")

        rows = {"engine in-process (float RGBA)": engine,
                "OFX plugin, float RGBA": lambda: plugin(src_f, out_f, np.float32),
                "OFX plugin, 16-bit RGBA": lambda: plugin(src_u, out_u, np.uint16)}
        for fn in rows.values():  # warm-up: model load, shared-memory creation, first mappings
            fn()
        best = {k: float("inf") for k in rows}
        for _ in range(args.repeat):
            for name, fn in rows.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        # correctness check on the side: the plugin output equals the engine's
        plugin(src_f, out_f, np.float32)
        diff = float(np.abs(out_f.picture() - enh.process([rgba])).max())
    finally:
        host.close()
        server.stop()

    base = best["engine in-process (float RGBA)"]
    print(f"\n{w}x{h}, model '{args.model}', provider {args.provider}, {args.threads} threads, best of {args.repeat}")
    print(f"{'path':<32} {'ms/frame':>10} {'fps':>8} {'ratio':>7}")
    for name, t in best.items():
        print(f"{name:<32} {t * 1e3:>10.1f} {1 / t:>8.2f} {base / t:>7.3f}")
    print(f"plugin overhead (float): {(best['OFX plugin, float RGBA'] - base) * 1e3:+.1f} ms/frame; "
          f"max |plugin - engine| = {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
