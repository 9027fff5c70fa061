"""What the job server costs on top of the pipeline: segmented (resumable) run vs a direct `pipeline.run`, the
submit-to-done latency of tiny jobs, and status-poll latency while a job runs. Everything (folders, models,
clips) lives in a temporary folder; the models are the throwaway ones from tests/onnx_kit.py.

    python benchmarks/bench_server.py [--size 320x240] [--frames 96] [--segment-frames 24] [--model temporal3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from clips import make_clip  # noqa: E402
from onnx_kit import standard_set  # noqa: E402
from test_server_kit import Server, server_env  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--segment-frames", type=int, default=24)
    ap.add_argument("--model", default="temporal3", help="cnn, sigma, up2, temporal3, mult4")
    ap.add_argument("--small-jobs", type=int, default=10)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        kit = standard_set(base / "kit")
        env = server_env(base / "srv", kit)
        import os

        os.environ.update({k: v for k, v in env.items() if k.startswith("VDIFF_")})
        from vdiff_ofx.engine.providers import Backend
        from vdiff_ofx.pipeline import Job, run

        (base / "srv").mkdir()
        clip = make_clip(base / "src.mov", n=a.frames, width=w, height=h, audio=True)
        tiny = make_clip(base / "tiny.mov", n=4, width=64, height=48)
        t = time.perf_counter()
        run(Job(str(clip), str(base / "direct.mov"), model=a.model, backend=Backend(providers=["cpu"], threads=1)))
        direct = time.perf_counter() - t

        srv = Server(base / "srv", kit, "--segment-frames", str(a.segment_frames))
        try:
            t = time.perf_counter()
            srv.start()
            startup = time.perf_counter() - t
            client = srv.client()
            t = time.perf_counter()
            job = client.submit(str(clip), str(base / "served.mov"), model=a.model)
            polls = []
            while True:
                p = time.perf_counter()
                state = client.status(job["id"])["state"]
                polls.append(time.perf_counter() - p)
                if state in ("done", "failed", "cancelled"):
                    break
                time.sleep(0.02)
            served = time.perf_counter() - t
            latencies = []
            for i in range(a.small_jobs):
                t = time.perf_counter()
                j = client.submit(str(tiny), str(base / f"tiny{i}.mov"), model="cnn")
                client.wait(j["id"], poll=0.01)
                latencies.append(time.perf_counter() - t)
        finally:
            srv.close()
    polls.sort()
    print(f"{a.frames} frames {w}x{h} {a.model}: direct {direct:.2f}s ({a.frames / direct:.1f} fps), server "
          f"{served:.2f}s in segments of {a.segment_frames} ({a.frames / served:.1f} fps, "
          f"x{served / direct:.2f})")
    print(f"server start to healthy: {startup:.2f}s")
    print(f"status poll while running: median {statistics.median(polls) * 1e3:.1f} ms, "
          f"p95 {polls[int(0.95 * (len(polls) - 1))] * 1e3:.1f} ms over {len(polls)} polls")
    print(f"tiny 4-frame job submit->done: median {statistics.median(latencies) * 1e3:.0f} ms "
          f"over {len(latencies)} jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
