"""Training and evaluation jobs over HTTP: submit, list, inspect (with the reward graph's history), stop.

A job is visible to its owner only (organizers included: docs/security.md); to anyone else it does not exist (404).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError, json_body
from race_server.auth import Principal, Role, principal_of, requires
from race_server.bus import BusError
from race_server.db import jobs
from race_server.db.jobs import JobEvent, JobRecord
from trainer.job_config import JobConfigError, TrainingSpec, parse_job

log = logging.getLogger("trackside.api.jobs")
MAX_BODY = 512 * 1024  # a reward function plus metadata


def _invalid(field: str, message: str) -> Response:
    return JSONResponse({"error": f"{field}: {message}", "code": "invalid", "field": field}, status_code=422)


def _visible(principal: Principal, job: JobRecord | None) -> bool:
    return job is not None and job.owner_id == principal.user_id


async def _job_for(request: Request, job_id: int) -> JobRecord:
    job = await jobs.get(request.app.state.pool, job_id)
    if job is None or not _visible(principal_of(request), job):
        raise ApiError(404, "not_found", f"job {job_id} does not exist")
    return job


async def _publish(request: Request, event: JobEvent | None) -> None:
    if event is None:
        return
    for channel in event.channels:
        try:
            await request.app.state.bus.publish(channel, event.as_event())
        except BusError as exc:
            log.warning("job event %s not published on %s: %s", event.id, channel, exc)


def _wake_workers(request: Request) -> None:
    supervisor = getattr(request.app.state, "job_supervisor", None)
    if supervisor is not None:
        supervisor.wake()


async def _source_job(request: Request, field: str, job_id: int) -> JobRecord:
    """The completed training job whose model an evaluation or a clone uses."""
    source = await jobs.get(request.app.state.pool, job_id)
    if source is None or not _visible(principal_of(request), source):
        raise ApiError(422, "invalid", f"{field}: job {job_id} does not exist")
    if source.kind != "training" or source.status != "completed" or source.model_dir is None:
        raise ApiError(
            422,
            "invalid",
            f"{field}: job {job_id} is a {source.status} {source.kind} job; a completed training job is needed",
        )
    return source


async def _model_problem(request: Request, model_id: int) -> str | None:
    """Why a stored model cannot be evaluated, or None: it must be the caller's, ready, and hold
    Trackside weights."""
    from race_server.api.models import model_store

    record = await model_store(request).get(model_id)
    principal = principal_of(request)
    if record is None or record.owner_id != principal.user_id:
        return f"model {model_id} does not exist"
    if record.status != "ready":
        return f"model {model_id} is {record.status}, not ready"
    if record.weights != "ready":
        return f"model {model_id} has TensorFlow weights that need converting first (trackside model convert)"
    return None


@requires(Role.ORGANIZER, Role.RACER)
async def create_job(request: Request) -> Response:
    data = await json_body(request, max_bytes=MAX_BODY)
    try:
        spec = parse_job(data)
    except JobConfigError as exc:
        return _invalid(exc.field, exc.message)
    if isinstance(spec, TrainingSpec):
        kind, source_id, source_field = "training", spec.clone_from_job_id, "clone_from_job_id"
    else:
        kind, source_id, source_field = "evaluation", spec.model_job_id, "model_job_id"
    if source_id is not None:
        try:
            await _source_job(request, source_field, source_id)
        except ApiError as exc:
            return _invalid(source_field, exc.message.removeprefix(f"{source_field}: "))
    if not isinstance(spec, TrainingSpec) and spec.model_id is not None:
        problem = await _model_problem(request, spec.model_id)
        if problem is not None:
            return _invalid("model_id", problem)
    principal = principal_of(request)
    assert principal.user_id is not None  # organizers and racers are users
    async with request.app.state.pool.acquire() as conn:
        job, event = await jobs.enqueue(
            conn, owner_id=principal.user_id, kind=kind, name=spec.name, config=spec.to_json(), source_job_id=source_id
        )
    await _publish(request, event)
    _wake_workers(request)
    return JSONResponse(job.as_json(), status_code=201)


@requires(Role.ORGANIZER, Role.RACER)
async def list_jobs(request: Request) -> Response:
    principal = principal_of(request)
    rows = await jobs.list_jobs(request.app.state.pool, principal.user_id)
    return JSONResponse({"jobs": [j.as_json() for j in rows]})


@requires(Role.ORGANIZER, Role.RACER)
async def get_job(request: Request) -> Response:
    job = await _job_for(request, request.path_params["job_id"])
    progress = await jobs.events(request.app.state.pool, job.id, type_="job.progress")
    body: dict[str, Any] = job.as_json()
    body["progress_history"] = [e.as_event() for e in progress]
    return JSONResponse(body)


@requires(Role.ORGANIZER, Role.RACER)
async def stop_job(request: Request) -> Response:
    job = await _job_for(request, request.path_params["job_id"])
    async with request.app.state.pool.acquire() as conn:
        updated, event = await jobs.request_stop(conn, job.id)
    await _publish(request, event)
    _wake_workers(request)
    return JSONResponse(updated.as_json())


routes: list[BaseRoute] = [
    Route("/api/jobs", create_job, methods=["POST"]),
    Route("/api/jobs", list_jobs, methods=["GET"]),
    Route("/api/jobs/{job_id:int}", get_job, methods=["GET"]),
    Route("/api/jobs/{job_id:int}/stop", stop_job, methods=["POST"]),
]
