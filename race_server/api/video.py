"""Run recordings over HTTP: ``GET /api/races/{id}/runs/{run_id}/video`` serves the WebM file with
HTTP range support (seeking in the browser), to anyone who may watch the race."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.race_access import race_access
from race_server.auth import AuthError
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


routes: list[BaseRoute] = [Route("/api/races/{race_id:int}/runs/{run_id:int}/video", run_video, methods=["GET"])]
