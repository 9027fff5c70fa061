"""The HTTP job API (docs/server-api.md) as a FastAPI app: token check on every request, one-line errors, and
handlers that only touch the store and the runner, so the API stays responsive while jobs run."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Literal, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import VdiffError
from . import jobspec
from .auth import check_header
from .runner import Runner
from .store import FINISHED, STATES, JobStore

log = logging.getLogger(__name__)


class Ops(BaseModel):
    """Preprocessing, in the CLI's order: crop, rotate, flip, resize."""

    model_config = ConfigDict(extra="forbid")
    crop: Optional[str] = None
    resize: Optional[str] = None
    interp: Optional[str] = "lanczos"
    rotate: int = 0
    flip: Optional[Literal["h", "v"]] = None


class Submit(BaseModel):
    """A job request; unknown fields are refused so a client's typo never silently does the default."""

    model_config = ConfigDict(extra="forbid")
    input: str
    output: str
    model: str = "denoise"  # or "auto": picked by the clip's analysis when the job runs, as `vdiff enhance -m auto`
    strength: Optional[Union[float, Literal["auto"]]] = None  # "auto": the noise measured on each shot
    start: Optional[Union[int, str]] = None
    end: Optional[Union[int, str]] = None
    codec: Optional[str] = None
    bit_depth: Optional[Literal[8, 10, 12, 16]] = None
    tile: Optional[int] = None
    tta: Literal[1, 2, 4, 8] = 1
    fields: str = "auto"  # checked by jobspec (ops.fields.FIELD_MODES): one list, one message
    frame_rate: Optional[Union[float, str]] = None  # an image sequence's (24, "24000/1001"); movies keep their own
    overwrite: bool = False
    copy_streams: bool = True
    ops: Optional[Ops] = None


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _one_line(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if not errors:
        return 422, "invalid request"
    err = errors[0]
    if err.get("type") == "json_invalid":
        return 400, f"malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}"
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    msg = err.get("msg", "invalid value")
    if err.get("type") == "missing":
        return 422, f"missing field '{loc}'"
    if err.get("type") == "extra_forbidden":
        return 422, f"unknown field '{loc}'"
    if err.get("type") == "model_attributes_type":
        return 400, "the body must be a JSON object"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return 422, f"{loc or 'body'}: {msg}{more}"


def create_app(store: JobStore, runner: Runner, token: str, shutdown: Callable[[], None] | None = None,
               started: float | None = None) -> FastAPI:
    """Build the app around a store and runner (tests may pass their own)."""
    app = FastAPI(title="vdiff job server", version=__version__,
                  description="Local job API for vdiff; see docs/server-api.md. Bearer token on every request.")
    started = started or time.time()

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if not check_header(request.headers.get("authorization"), token):
            return JSONResponse({"detail": "missing or wrong token (Authorization: Bearer <token from the "
                                           "config folder's 'token' file>)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        status, detail = _one_line(exc)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]},
                            status_code=500)

    def get_job(job_id: str) -> dict[str, Any]:
        job = store.get(job_id)
        if job is None:
            raise ApiError(404, f"unknown job id '{job_id}'")
        return job

    def public(job: dict[str, Any]) -> dict[str, Any]:
        job = runner.live(job)
        job.pop("result", None)
        return job

    @app.get("/health")
    def health() -> dict[str, Any]:
        from ..engine.providers import available

        counts = store.counts()
        return {"status": "ok", "version": __version__, "jobs_running": counts["running"],
                "jobs_queued": counts["queued"], "providers": available(), "pid": os.getpid(),
                "uptime": round(time.time() - started, 1), "jobs": counts}

    @app.get("/models")
    def models() -> list[dict[str, Any]]:
        from ..engine.models import registry

        try:
            reg = registry()
        except VdiffError as exc:
            raise ApiError(500, str(exc)) from None
        return [{"name": s.name, "task": s.task, "scale": s.scale, "temporal_window": s.temporal_window,
                 "strength": {"min": s.strength.min, "max": s.strength.max, "default": s.strength.default,
                              "unit": s.strength.unit}
                 if s.strength else None, "description": s.description} for s in reg.values()]

    @app.post("/jobs", status_code=201)
    def submit(body: Submit) -> dict[str, Any]:
        options = body.model_dump(exclude={"input", "output", "model"})
        if options["ops"] is None:
            options.pop("ops")
        try:
            _, _, start, end = jobspec.build(body.input, body.output, body.model, options)
        except VdiffError as exc:
            raise ApiError(400, str(exc)) from None
        other = store.active_outputs().get(body.output)
        if other:
            raise ApiError(409, f"job {other} is already writing {body.output}")
        job = store.add(body.input, body.output, body.model, options, end - start)
        runner.notify()
        log.info("job %s: queued %s -> %s", job["id"], body.input, body.output)
        return public(job)

    @app.get("/jobs")
    def list_jobs(state: Optional[str] = None) -> list[dict[str, Any]]:
        if state is not None and state not in STATES:
            raise ApiError(400, f"unknown state '{state}' (one of {', '.join(STATES)})")
        return [public(j) for j in store.list(state)]

    @app.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        return public(get_job(job_id))

    @app.post("/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        job = get_job(job_id)
        if job["state"] in FINISHED:
            raise ApiError(409, f"job {job_id} is already {job['state']}")
        if not store.set_state(job_id, "cancelled", expect=("queued",)):
            if not runner.cancel(job_id):  # running in the store but not here: nothing left to stop
                store.set_state(job_id, "cancelled", expect=("running",))
        log.info("job %s: cancel requested", job_id)
        return public(get_job(job_id))

    @app.get("/jobs/{job_id}/result")
    def result(job_id: str) -> dict[str, Any]:
        job = get_job(job_id)
        if job["state"] != "done":
            detail = f"job {job_id} is {job['state']}" + (f": {job['error']}" if job.get("error") else "")
            raise ApiError(409, detail)
        return job["result"]

    @app.post("/shutdown")
    def stop() -> dict[str, Any]:
        """Stop gracefully: the running job is interrupted and resumes on the next start."""
        if shutdown is None:
            raise ApiError(501, "this server cannot be stopped over HTTP")
        log.info("shutdown requested over HTTP")
        shutdown()
        return {"status": "stopping"}

    return app
