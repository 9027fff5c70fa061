"""decode -> preprocess -> enhance -> encode, each stage in its own thread joined by bounded queues, so the
slowest stage (the model) sets the pace. Output goes to a temporary name in the target folder and is renamed
only when complete; cancel or failure removes it. The source is never written."""

from __future__ import annotations

import bisect
import dataclasses
import errno
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

from .engine.enhancer import Enhancer
from .engine.models import get_model
from .engine.providers import Backend
from .errors import Cancelled, OutputError, VdiffError
from .io.codecs import EncodeSettings, choose_settings
from .io.decode import decode_frames
from .io.encode import Encoder
from .io.probe import VideoInfo, probe
from .io.sequence import discard, existing_outputs, first_number, output_sequence, publish, sequence_pattern
from .ops.fields import FIELD_MODES, by_field, check_field_mode, resolve_mode
from .ops.geometry import Op, apply, output_aspect, output_size
from .ops.ranges import frames_to_timecode, resolve_range, timecode_to_frames
from .ops.window import windows
from .parallel import io_workers, ordered_map
from .progress import Progress, ProgressFn

log = logging.getLogger(__name__)

_END = object()


@dataclass
class Job:
    """Everything one enhancement needs; adapters (CLI, server, Resolve) build one of these."""

    input: str
    output: str
    model: str = "denoise"
    strength: float | str | None = None  # a number, None (model default) or "auto" (from analysis)
    shot_strengths: tuple[tuple[int, float], ...] = ()  # (first frame, strength) per shot: `--strength auto`'s own
    tile: int | None = None
    overlap: int | None = None
    tta: int = 1  # views averaged per frame (1, 2, 4, 8): Enhancer's test-time augmentation
    backend: Backend = field(default_factory=Backend)
    codec: str | None = None
    bit_depth: int | None = None
    start: str | int | None = None
    end: str | int | None = None
    ops: list[Op] = field(default_factory=list)
    overwrite: bool = False
    copy_streams: bool = True
    cuts: frozenset[int] = frozenset()
    queue_size: int = 4
    io_threads: int = 0  # colour-conversion threads per I/O stage (0: parallel.io_workers picks)
    fields: str = "auto"  # interlaced sources: one of FIELD_MODES (plan_fields says what each does)
    frame_rate: Fraction | None = None  # an image sequence's (io.sequence; default 24); movies keep their own


@dataclass(frozen=True)
class Result:
    output: str
    frames: int
    seconds: float
    width: int
    height: int
    settings: EncodeSettings
    provider: str
    start: int
    end: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def partial_name(output: Path) -> Path:
    """Hidden temporary name beside the output, keeping the extension so the container is chosen from it."""
    return output.with_name(f".{output.stem}.vdiff-partial-{os.getpid()}-{threading.get_ident() % 10000}"
                            f"{output.suffix}")


def check_paths(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse before any work: output over the source, an existing output without overwrite, a bad folder."""
    if output.exists() and source.exists() and os.path.samefile(source, output) or \
            output.resolve() == source.resolve():
        raise OutputError(f"refusing to write over the source {source}; choose another output name")
    if output.is_dir():
        raise OutputError(f"output {output} is a folder; give a file name such as {output / 'clip.mov'}")
    if output.exists() and not overwrite:
        raise OutputError(f"{output} already exists; pass --overwrite to replace it")
    pattern = output_sequence(str(output))
    if pattern is not None:
        source_pattern = sequence_pattern(str(source))
        there = existing_outputs(pattern)
        if source_pattern is not None and os.path.abspath(source_pattern) == os.path.abspath(pattern):
            raise OutputError(f"refusing to write over the source sequence {source}; choose another output name")
        if there and not overwrite:
            raise OutputError(f"{len(there)} file(s) of {output} already exist ({there[0]} ...); pass --overwrite "
                              "to replace them")
    folder = output.parent
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable")


class _Stage(threading.Thread):
    """A worker thread that records its exception for the coordinator instead of dying silently."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the coordinator, re-raised there
            self.error = exc


def _put(q: queue.Queue, item: Any, cancel: threading.Event) -> bool:
    while not cancel.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, cancel: threading.Event, others: list[_Stage]) -> Any:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if cancel.is_set():
                return _END
            if any(s.error is not None for s in others):
                return _END


def _iter_queue(q: queue.Queue, cancel: threading.Event, others: list[_Stage]) -> Iterator[Any]:
    while True:
        item = _get(q, cancel, others)
        if item is _END:
            return
        yield item


@dataclass(frozen=True)
class FieldPlan:
    """How an interlaced source's frames go through the model and how the output is tagged."""

    separate: bool = False    # each field through the model apart (ops.fields.by_field), woven back
    order: str | None = None  # the output's field order; None: progressive
    why: str | None = None    # why the source's fields could not be kept (warned once by run)


def _fields_lost(info: VideoInfo, job: Job, mode: str) -> str | None:
    """Why the source's field structure cannot survive ``mode``, or None: ops move rows across fields, and
    an odd height cannot be split into two fields to enhance apart (whole frames keep it as it is)."""
    if job.ops:
        return "crop/resize/rotate/flip mix its fields"
    if mode == "separate" and info.height % 2:
        return f"its height {info.height} is odd"
    return None


def plan_fields(info: VideoInfo, job: Job, scale: int) -> FieldPlan:
    """The field handling ``job.fields`` asks for on this source with a model of ``scale`` (ops.fields.resolve_mode
    says what each mode means), and whether the ops or the frame size keep the fields."""
    mode = resolve_mode(job.fields, info.field_order is not None, scale, job.model)
    if mode == "progressive":
        return FieldPlan()
    why = _fields_lost(info, job, mode)
    if why:
        return FieldPlan(why=why)
    return FieldPlan(separate=mode == "separate", order=info.field_order)


def output_info(info: VideoInfo, start: int, width: int, height: int, field_order: str | None = None,
                sample_aspect: Fraction | None = None) -> VideoInfo:
    """The source description as the encoder should tag the output: new size, timecode moved to ``start``,
    ``field_order`` when the output keeps the source's fields (else progressive), ``sample_aspect`` for anamorphic
    pictures (ops.geometry.output_aspect; None: square pixels)."""
    tc = info.start_timecode
    if tc and start:
        drop = ";" in tc
        tc = frames_to_timecode(timecode_to_frames(tc, info.frame_rate) + start, info.frame_rate, drop)
    return dataclasses.replace(info, width=width, height=height, start_timecode=tc, field_order=field_order,
                               sample_aspect=sample_aspect)


def run(job: Job, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
        enhancer: Enhancer | None = None) -> Result:
    """Run one job to completion; raises VdiffError (Cancelled on cancel) and leaves nothing behind on failure."""
    cancel = cancel or threading.Event()
    check_field_mode(job.fields)
    source, output = Path(job.input), Path(job.output)
    check_paths(source, output, job.overwrite)
    info = probe(str(source), job.frame_rate)
    if enhancer is None:
        from .analysis.auto import resolve_auto

        job = resolve_auto(job, cancel, info, progress)
    start, end = resolve_range(job.start, job.end, info.frame_count, info.frame_rate, info.start_timecode)
    fields = plan_fields(info, job, enhancer.scale if enhancer else get_model(job.model).scale)
    if fields.why:
        log.warning("%s is interlaced (%s), but %s: whole frames are enhanced and the output is progressive",
                    job.input, info.field_order, fields.why)
    enh = enhancer or Enhancer(job.model, job.backend, job.tile, job.overlap, job.strength, tta=job.tta)
    width, height = output_size(job.ops, info.width, info.height)
    width, height = width * enh.scale, height * enh.scale
    settings = choose_settings(str(output), info, job.codec, job.bit_depth, width)
    total = end - start
    temp = partial_name(Path(output_sequence(str(output)) or output))  # a sequence's in printf form (out.%04d.dpx)
    numbered = first_number(info.sequence, start)  # an image-sequence output's first file number
    full_range = start == 0 and end == info.frame_count
    workers = io_workers(job.io_threads)
    decoded: queue.Queue = queue.Queue(job.queue_size)
    enhanced: queue.Queue = queue.Queue(job.queue_size)
    stages: list[_Stage] = []
    first_pts: list[int | None] = []

    def decode() -> None:
        # a source declared progressive (PsF) has progressive chroma too
        decode_info = dataclasses.replace(info, field_order=None) if job.fields == "progressive" else info
        for frame in decode_frames(decode_info, start, end, workers):
            if cancel.is_set():
                return
            rgb = apply(job.ops, frame.rgb) if job.ops else frame.rgb
            if not _put(decoded, (frame.index, frame.pts, rgb), cancel):
                return
        _put(decoded, _END, cancel)

    def enhance() -> None:
        items = ((idx, (pts, rgb)) for idx, pts, rgb in _iter_queue(decoded, cancel, stages))
        starts = [first for first, _ in job.shot_strengths]
        for idx, (pts, _), win in windows(items, enh.window, job.cuts):
            if cancel.is_set():
                return
            if starts:  # each shot at the strength measured on it
                enh.strength = job.shot_strengths[max(bisect.bisect_right(starts, idx) - 1, 0)][1]
            frames = [rgb for _, rgb in win]
            out = by_field(enh.process, frames) if fields.separate else enh.process(frames)
            if not _put(enhanced, (idx, pts, out), cancel):
                return
        if not cancel.is_set() and not any(s.error for s in stages[:1]):
            _put(enhanced, _END, cancel)

    written: queue.Queue = queue.Queue()
    encoder: Encoder | None = None

    def encode() -> None:
        count = 0
        items = _iter_queue(enhanced, cancel, stages)
        for pts, frame in ordered_map(lambda it: (it[1], encoder.prepare(it[2])), items, workers, "vdiff-encode"):
            if not first_pts:
                first_pts.append(pts)
            rel = None if pts is None or first_pts[0] is None else pts - first_pts[0]
            encoder.write_frame(frame, rel)
            count += 1
            written.put(count)
        written.put(_END)

    started = time.monotonic()
    done = 0
    try:
        sar = output_aspect(job.ops, info.width, info.height, info.sample_aspect)  # a model scales both sides alike
        encoder = Encoder(str(temp), output_info(info, start, width, height, fields.order, sar), settings, width,
                          height, copy_streams=job.copy_streams and full_range, first_number=numbered)
        stages += [_Stage("vdiff-decode", decode), _Stage("vdiff-enhance", enhance), _Stage("vdiff-encode", encode)]
        for s in stages:
            s.start()
        if progress:
            progress(Progress(0, total, 0.0))
        # Progress is reported from the caller's thread (adapters keep thread-bound handles, e.g. SQLite).
        for done in _iter_queue(written, cancel, stages):
            if progress:
                progress(Progress(done, total, time.monotonic() - started))
        for s in stages:
            s.join(timeout=5)
        errors = [s.error for s in stages if s.error is not None]
        if errors:
            raise errors[0]
        if cancel.is_set():
            raise Cancelled("cancelled; partial output removed")
        if done != total:
            raise VdiffError(f"only {done} of {total} frames came through; output discarded")
        encoder.close()
        encoder = None
        publish(temp, output, numbered, total)
    except BaseException as exc:
        cancel.set()
        for s in stages:  # the encode stage must be out of encoder.write() before the encoder is aborted
            s.join(timeout=5)
        if encoder is not None:
            try:
                encoder.abort()
            except Exception:
                pass
        try:
            discard(temp, numbered, total)
        except OSError:
            pass
        if isinstance(exc, OSError):
            if exc.errno == errno.ENOSPC:
                raise OutputError(f"disk full while writing {output}; partial output removed") from None
            raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
        if isinstance(exc, KeyboardInterrupt):
            raise Cancelled("cancelled; partial output removed") from None
        if isinstance(exc, OutputError) and str(temp) in str(exc):  # the editor knows the name they asked for
            raise OutputError(str(exc).replace(str(temp), str(output)) + "; partial output removed") from None
        raise
    return Result(str(output), done, time.monotonic() - started, width, height, settings,
                  enh.session.provider, start, end)


def frames_in(job: Job) -> int:
    """How many frames a job will write (for queue displays before it starts)."""
    info = probe(job.input, job.frame_rate)
    s, e = resolve_range(job.start, job.end, info.frame_count, info.frame_rate, info.start_timecode)
    return e - s


__all__ = ["Job", "Result", "run", "FIELD_MODES", "plan_fields", "frames_in", "check_paths", "partial_name",
           "Fraction"]
