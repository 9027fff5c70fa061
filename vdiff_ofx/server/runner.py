"""Worker threads that take queued jobs from the store and run them in closed segments, keeping live progress
in memory (persisted at each segment) so status polls never wait on video work."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.auto import needs_analysis, resolve_auto
from ..engine.enhancer import Enhancer
from ..engine.providers import Backend
from ..errors import Cancelled, VdiffError
from ..io.codecs import choose_settings
from ..pipeline import Job, check_paths, output_info, run
from ..progress import Progress
from . import jobspec, segments
from .store import JobStore

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_FRAMES = 240


@dataclass
class _Live:
    """A running job's control and progress, shared between its worker and the API."""

    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str = "cancel"  # "cancel" (user) or "shutdown" (resume on next start)
    done: int = 0
    total: int = 0
    fresh: int = 0  # frames processed in this run (resumed segments excluded), for fps
    started: float = field(default_factory=time.monotonic)
    analysis: Progress | None = None  # while the job analyses its clip (auto settings, a temporal model's cuts)

    @property
    def fps(self) -> float | None:
        elapsed = time.monotonic() - self.started
        return round(self.fresh / elapsed, 3) if self.fresh and elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        fps = self.fps
        return round((self.total - self.done) / fps, 2) if fps else None


class Runner:
    """``workers`` threads running jobs one each; ``stop()`` interrupts running jobs so they resume later."""

    def __init__(self, store: JobStore, backend: Backend, workers: int = 1,
                 segment_frames: int = DEFAULT_SEGMENT_FRAMES) -> None:
        self.store = store
        self.backend = backend
        self.segment_frames = segment_frames
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._threads = [threading.Thread(target=self._loop, name=f"vdiff-worker-{i}", daemon=True)
                         for i in range(max(1, workers))]

    def start(self) -> None:
        resumed = self.store.requeue_running()
        if resumed:
            log.info("resuming interrupted jobs: %s", ", ".join(resumed))
        for t in self._threads:
            t.start()

    def notify(self) -> None:
        """A job was queued: wake an idle worker."""
        with self._wake:
            self._wake.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt running jobs (they go back to the queue, keeping their finished segments) and join."""
        with self._wake:
            self._stopping = True
            for live in self._live.values():
                live.reason = "shutdown"
                live.cancel.set()
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop; False when it is not running here."""
        with self._lock:
            live = self._live.get(job_id)
            if live is None:
                return False
            live.cancel.set()
            return True

    def live(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job object with in-memory progress merged in."""
        with self._lock:
            live = self._live.get(job["id"])
            if live is not None and job["state"] == "running":
                job = {**job, "frames_done": live.done, "frames_total": live.total or job["frames_total"],
                       "fps": live.fps, "eta": live.eta, "phase": "analysing" if live.analysis else "enhancing"}
                if live.analysis:
                    a = live.analysis
                    job["analysis"] = {"frames_done": a.done, "frames_total": a.total, "fps": round(a.fps, 3),
                                       "eta": round(a.eta, 2) if a.eta is not None else None}
        return job

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._live)

    # -- worker ---------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    job = self.store.claim_next()
                    if job is not None:
                        live = _Live()
                        self._live[job["id"]] = live
                        break
                    self._wake.wait(timeout=2.0)
                else:
                    return
            try:
                self._run(job, live)
            finally:
                with self._lock:
                    self._live.pop(job["id"], None)

    def _run(self, job: dict[str, Any], live: _Live) -> None:
        job_id = job["id"]
        log.info("job %s: start %s -> %s (%s)", job_id, job["input"], job["output"], job["model"])
        try:
            result = self._execute(job, live)
        except Cancelled:
            if live.reason == "shutdown":
                self.store.set_state(job_id, "queued", expect=("running",), fps=None, eta=None,
                                     frames_done=live.done)
                log.info("job %s: interrupted by shutdown at frame %d; will resume", job_id, live.done)
            else:
                segments.remove_files(self.store.segments(job_id), Path(job["output"]))
                self.store.drop_segments(job_id)
                self.store.set_state(job_id, "cancelled", frames_done=live.done, fps=None, eta=None)
                log.info("job %s: cancelled", job_id)
        except VdiffError as exc:
            self._fail(job, live, str(exc))
        except MemoryError:
            self._fail(job, live, "out of memory; try a smaller tile")
        except Exception as exc:  # a bug must fail one job, never the worker
            log.exception("job %s: unexpected error", job_id)
            self._fail(job, live, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
        else:
            self.store.set_state(job_id, "done", frames_done=result["frames"], fps=result["fps"], eta=0.0,
                                 result=result)
            log.info("job %s: done, %d frames in %.1fs", job_id, result["frames"], result["seconds"])

    def _fail(self, job: dict[str, Any], live: _Live, message: str) -> None:
        job_id = job["id"]
        segments.remove_files(self.store.segments(job_id), Path(job["output"]))
        self.store.drop_segments(job_id)
        self.store.set_state(job_id, "failed", error=message, frames_done=live.done, fps=None, eta=None)
        log.warning("job %s: failed: %s", job_id, message)

    def _execute(self, job: dict[str, Any], live: _Live) -> dict[str, Any]:
        job_id, options = job["id"], job["options"]
        output = Path(job["output"])
        already = self.store.segments(job_id)  # non-empty when resuming
        pjob, info, start, end = jobspec.build(job["input"], job["output"], job["model"], options, self.backend)
        live.total = end - start
        started = time.monotonic()
        if needs_analysis(pjob):  # "auto" model or strength, or a temporal model's shot cuts: as `vdiff enhance`
            log.info("job %s: analysing %s", job_id, pjob.input)
            def analysing(p: Progress) -> None:
                live.analysis = p
            try:
                pjob = resolve_auto(pjob, live.cancel, info, analysing)
            finally:
                live.analysis = None
            log.info("job %s: model %s, strength %s, cuts %s", job_id, pjob.model, pjob.strength, sorted(pjob.cuts))
        enh = Enhancer(pjob.model, pjob.backend, pjob.tile, pjob.overlap, pjob.strength, tta=pjob.tta)
        settings = choose_settings(str(output), info, pjob.codec, pjob.bit_depth)
        if not segments.can_segment(settings, info):
            def whole(p: Progress) -> None:
                live.done = live.fresh = p.done
            r = run(pjob, whole, live.cancel, enh)
            return _result(r.output, r.frames, time.monotonic() - started, r.width, r.height, settings.label)

        plan = already or segments.plan(job_id, output, start, end, self.segment_frames)
        if not already:
            self.store.plan_segments(job_id, plan)
        parts = [(seg, segments.Span.of(seg, start, end, enh.window)) for seg in plan]
        live.done = sum(seg.end - seg.start for seg in plan if seg.done and Path(seg.path).is_file())
        if already:
            log.info("job %s: resuming at %d of %d frames", job_id, live.done, live.total)
            segments.remove_files([seg for seg in plan if not seg.done], output)  # a crash's leftovers
        self.store.update(job_id, frames_done=live.done, frames_total=live.total)
        for seg, span in parts:
            if seg.done and Path(seg.path).is_file():
                continue
            if live.cancel.is_set():
                raise Cancelled("cancelled")
            base = live.done

            def progress(p: Progress, base: int = base, head: int = span.head, n: int = seg.end - seg.start) -> None:
                got = min(max(0, p.done - head), n)
                live.fresh += got + base - live.done
                live.done = base + got

            seg_job = dataclasses.replace(pjob, output=seg.path, start=span.start, end=span.end, overwrite=True,
                                          copy_streams=False)  # the job's own settings, cuts and shot strengths
            run(seg_job, progress, live.cancel, enh)
            seg.done = True
            self.store.segment_done(job_id, seg.idx)
            self.store.update(job_id, frames_done=live.done, fps=live.fps, eta=live.eta)
        if live.cancel.is_set():
            raise Cancelled("cancelled")
        check_paths(Path(pjob.input), output, pjob.overwrite)
        width, height = enh_size(pjob, info, enh.scale)
        tc = output_info(info, start, width, height).start_timecode
        full = start == 0 and end == info.frame_count
        frames = segments.join(parts, output, info, start, tc, pjob.copy_streams and full)
        segments.remove_files(plan)
        self.store.drop_segments(job_id)
        return _result(str(output), frames, time.monotonic() - started, width, height, settings.label)


def enh_size(job: Job, info, scale: int) -> tuple[int, int]:
    from ..ops.geometry import output_size

    w, h = output_size(job.ops, info.width, info.height)
    return w * scale, h * scale


def _result(output: str, frames: int, seconds: float, width: int, height: int, codec: str) -> dict[str, Any]:
    return {"output": output, "frames": frames, "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 3) if seconds > 0 else 0.0, "width": width, "height": height,
            "codec": codec}
