"""Fill in what a job left to the clip itself: `--model auto`, `--strength auto`, and shot cuts for temporal
models (so their window resets at each cut)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING

from ..engine.models import get_model, registry
from ..engine.providers import GPU, Backend, chain
from ..engine.session import warm_session
from ..errors import NothingToEnhance
from ..io.probe import VideoInfo, probe
from ..ops.ranges import resolve_range
from ..progress import Progress, ProgressFn
from .clip import analyse, auto_strength, recommend

if TYPE_CHECKING:
    from ..pipeline import Job

log = logging.getLogger(__name__)
CONTEXT = 8  # frames analysed either side of a job's range: more than any temporal model's half window


def needs_analysis(job: "Job") -> bool:
    if job.model == "auto" or job.strength == "auto":
        return True
    return get_model(job.model).temporal_window > 1 and not job.cuts


def runs_on_gpu(backend: Backend) -> bool:
    """Whether `--model auto`'s quality denoiser would really run on a GPU with ``backend`` (the session that answers
    is the one the job then uses; a GPU provider that fails to load falls back to the CPU and says no)."""
    if "denoise-hq" not in registry() or not any(name in GPU for name, _ in chain(backend)):
        return False
    return warm_session(get_model("denoise-hq"), backend).on_gpu


def resolve_auto(job: "Job", cancel: threading.Event | None = None, info: VideoInfo | None = None,
                 progress: ProgressFn | None = None) -> "Job":
    """A copy of ``job`` with model, strength and cuts decided from the analysis of its input; `--strength auto`
    also gives each shot the strength measured on it (a clean shot cut into a noisy clip is left nearly alone).
    ``info``: the input's probe, where the caller has it; ``progress`` hears the analysis (stage "analyse"), which
    decodes every frame of the range and can take minutes before the first enhanced frame."""
    if not needs_analysis(job):
        return job
    info = info or probe(job.input, job.frame_rate)
    start, end = resolve_range(job.start, job.end, info.frame_count, info.frame_rate, info.start_timecode)
    # only the frames the job enhances, and the few a window reaches past them (a cut at `start` is seen from the
    # frames before it): a Resolve clip is often seconds of an hour-long source
    began = time.monotonic()
    report = None if progress is None else \
        (lambda done, total: progress(Progress(done, total, time.monotonic() - began, "analyse")))
    result = analyse(job.input, progress=report, cancel=cancel, info=info, first=start - CONTEXT, last=end + CONTEXT)
    rec = recommend(result, gpu=job.model == "auto" and runs_on_gpu(job.backend))
    if job.model == "auto" and rec["model"] is None:
        raise NothingToEnhance(f"--model auto: {job.input} needs no enhancing ({rec['reason']}); no output written. "
                               f"Name a model (-m) to run one anyway.")
    model = rec["model"] if job.model == "auto" else job.model
    strength, per_shot = job.strength, ()
    if strength == "auto":
        spec = get_model(model)
        strength = None
        if spec.strength and spec.task == "denoise":  # the analysis measures noise sigma: a denoiser's strength
            clamp = lambda v: round(float(min(max(v, spec.strength.min), spec.strength.max)), 1)  # noqa: E731
            strength = clamp(auto_strength(rec["sigma"], rec["grain"]) if rec["sigma"] is not None
                             else spec.strength.default)
            if len(result.shots) > 1:
                per_shot = tuple((shot.start, clamp(auto_strength(shot.features["noise_sigma_rgb"],
                                                                  shot.features.get("grain", 1.0)))
                                  if shot.features else strength) for shot in result.shots)
    log.info("auto: model %s, strength %s%s, cuts %s (%s)", model, strength,
             f" (per shot {[v for _, v in per_shot]})" if per_shot else "", result.cuts, rec["reason"])
    return dataclasses.replace(job, model=model, strength=strength, shot_strengths=per_shot,
                               cuts=frozenset(result.cuts))
