"""Fill in what a job left to the clip itself: `--model auto`, `--strength auto`, and shot cuts for temporal
models (so their window resets at each cut)."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from ..engine.models import get_model
from .clip import analyse, recommend

if TYPE_CHECKING:
    from ..pipeline import Job

log = logging.getLogger(__name__)


def needs_analysis(job: "Job") -> bool:
    if job.model == "auto" or job.strength == "auto":
        return True
    return get_model(job.model).temporal_window > 1 and not job.cuts


def resolve_auto(job: "Job") -> "Job":
    """A copy of ``job`` with model, strength and cuts decided from the analysis of its input."""
    if not needs_analysis(job):
        return job
    result = analyse(job.input)
    rec = recommend(result)
    model = rec["model"] if job.model == "auto" else job.model
    strength = job.strength
    if strength == "auto":
        spec = get_model(model)
        strength = None
        if spec.strength:
            sigma = rec["sigma"] if rec["sigma"] is not None else spec.strength.default
            strength = round(float(min(max(sigma, spec.strength.min), spec.strength.max)), 1)
    log.info("auto: model %s, strength %s, cuts %s (%s)", model, strength, result.cuts, rec["reason"])
    return dataclasses.replace(job, model=model, strength=strength, cuts=frozenset(result.cuts))
