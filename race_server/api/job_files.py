"""Files an evaluation job leaves behind, for the workshop's Evaluate page: the video (served with
HTTP range support, so the browser can seek and stream it) and the simtrace CSV. Owner only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError
from race_server.api.jobs import _job_for
from race_server.auth import Role, requires
from trainer.service import EVALUATION_SIMTRACE_GLOB, EVALUATION_VIDEO


def _newest(folder: Path, pattern: str) -> Path | None:
    """The newest file matching: a pattern may name one file per run of the job."""
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    return found[-1] if found else None


async def _job_file(request: Request, pattern: str, what: str) -> Path:
    job = await _job_for(request, request.path_params["job_id"])
    path = None if job.model_dir is None else await asyncio.to_thread(_newest, Path(job.model_dir), pattern)
    if job.kind != "evaluation" or path is None:
        raise ApiError(404, "not_found", f"job {job.id} has no {what} (evaluations record one when they finish)")
    return path


@requires(Role.ORGANIZER, Role.RACER)
async def evaluation_video(request: Request) -> Response:
    path = await _job_file(request, EVALUATION_VIDEO, "evaluation video")
    return FileResponse(path, media_type="video/mp4")


@requires(Role.ORGANIZER, Role.RACER)
async def evaluation_simtrace(request: Request) -> Response:
    path = await _job_file(request, EVALUATION_SIMTRACE_GLOB, "simtrace")
    job_id = request.path_params["job_id"]
    return FileResponse(path, media_type="text/csv", filename=f"evaluation-{job_id}-simtrace.csv")


routes: list[BaseRoute] = [
    Route("/api/jobs/{job_id:int}/video", evaluation_video, methods=["GET"]),
    Route("/api/jobs/{job_id:int}/simtrace", evaluation_simtrace, methods=["GET"]),
]
