"""The race's video over HTTP, besides WHEP: ``GET /api/races/{id}/runs/{run_id}/video`` serves a
run's recording (WebM) with HTTP range support to anyone who may watch the race;
``POST /api/races/{id}/video/view`` ({"view": "chase" | "tv" | "topdown"}) switches the live
camera, for the race's organizer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError, field, json_body
from race_server.api.race_access import RaceRole, race_access
from race_server.auth import AuthError
from race_server.sim.broadcast import VIEWS
from race_server.stream.service import VideoService


async def run_video(request: Request) -> Response:
    race_id: int = request.path_params["race_id"]
    run_id: int = request.path_params["run_id"]
    try:
        await race_access(request, race_id)
    except AuthError as error:
        return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status)
    video: VideoService | None = getattr(request.app.state, "video", None)
    path = video.recording_path(race_id, run_id) if video is not None else None
    if path is None or not path.is_file():
        message = f"run {run_id} of race {race_id} has no recording (video off, or the run is still on track)"
        return JSONResponse({"error": message, "code": "not_found"}, status_code=404)
    media = "video/webm" if path.suffix == ".webm" else "video/x-matroska"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


async def switch_view(request: Request) -> Response:
    race_id: int = request.path_params["race_id"]
    try:
        await race_access(request, race_id, allow=(RaceRole.ORGANIZER,))
    except AuthError as error:
        return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status)
    try:
        view = field(await json_body(request), "view", str)
    except ApiError as error:
        return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status)
    if view not in VIEWS:
        message = f"view {view!r} is not a camera (allowed: {', '.join(VIEWS)})"
        return JSONResponse({"error": message, "code": "invalid"}, status_code=422)
    video: VideoService | None = getattr(request.app.state, "video", None)
    stream = video.stream_for(race_id) if video is not None else None
    if stream is None or not stream.alive:
        message = f"race {race_id} has no live video right now (its simulator is not running)"
        return JSONResponse({"error": message, "code": "no_video"}, status_code=404)
    if stream.config.source == "car":
        message = f"race {race_id} is on a physical track: its picture is the car's own camera"
        return JSONResponse({"error": message, "code": "physical_track"}, status_code=409)
    stream.set_view(view)
    return JSONResponse({"view": view})


routes: list[BaseRoute] = [
    Route("/api/races/{race_id:int}/runs/{run_id:int}/video", run_video, methods=["GET"]),
    Route("/api/races/{race_id:int}/video/view", switch_view, methods=["POST"]),
]
