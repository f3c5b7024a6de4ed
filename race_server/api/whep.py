"""WHEP for a race's live video: ``POST /api/races/{id}/whep`` with an SDP offer answers ``201`` with
the SDP answer and the session's ``Location``; ``DELETE`` that location ends the session.

Authorised like the race websocket: the race's organizer, its racers, and viewers (a viewer token,
as ``Authorization: Bearer`` or ``?viewer=``). Negotiation lives in `race_server.stream.whep`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.race_access import race_access
from race_server.auth import AuthError
from race_server.stream.service import VideoService
from race_server.stream.whep import MAX_OFFER_BYTES, WhepError

SDP = "application/sdp"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def _video(request: Request) -> VideoService | None:
    return getattr(request.app.state, "video", None)


async def whep_offer(request: Request) -> Response:
    race_id: int = request.path_params["race_id"]
    try:
        await race_access(request, race_id)
    except AuthError as error:
        return _error(error.status, error.code, error.message)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != SDP:
        return _error(415, "unsupported_media_type", f"send the SDP offer as Content-Type: {SDP}")
    body = await request.body()
    if len(body) > MAX_OFFER_BYTES:
        return _error(413, "too_large", f"SDP offer over {MAX_OFFER_BYTES} bytes")
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "bad_offer", "the SDP offer is not UTF-8 text")
    video = _video(request)
    stream = video.stream_for(race_id) if video is not None else None
    if video is None or stream is None:
        return _error(404, "no_video", f"race {race_id} has no live video right now (its simulator is not running)")
    try:
        session_id, answer = await video.hub.open(stream, offer)
    except WhepError as error:
        return _error(error.status, error.code, error.message)
    location = f"/api/races/{race_id}/whep/{session_id}"
    return Response(answer, status_code=201, media_type=SDP, headers={"Location": location})


async def whep_delete(request: Request) -> Response:
    race_id: int = request.path_params["race_id"]
    try:
        await race_access(request, race_id)
    except AuthError as error:
        return _error(error.status, error.code, error.message)
    video = _video(request)
    session_id: str = request.path_params["session_id"]
    session = video.hub.sessions.get(session_id) if video is not None else None
    if video is None or session is None or session.race_id != race_id:
        return _error(404, "not_found", f"no video session {session_id!r} in race {race_id} (it may have ended)")
    await video.hub.close(session_id)
    return Response(status_code=200)


routes: list[BaseRoute] = [
    Route("/api/races/{race_id:int}/whep", whep_offer, methods=["POST"]),
    Route("/api/races/{race_id:int}/whep/{session_id}", whep_delete, methods=["DELETE"]),
]
