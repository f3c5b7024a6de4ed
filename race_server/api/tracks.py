"""The console track catalogue for the create-race wizard: ``GET /api/tracks``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.auth import requires
from race_server.sim.tracks import list_tracks


@requires()
async def tracks(request: Request) -> Response:
    found = [
        {
            "track_id": t.track_id,
            "name": t.name,
            "description": t.description,
            "difficulty": t.difficulty,
            "length_m": round(t.length, 2),
            "width_m": round(t.width, 3),
            "default_direction": t.default_direction,
            "directions": list(t.enabled_directions),
        }
        for t in list_tracks()
        if not t.disabled
    ]
    return JSONResponse({"tracks": found})


routes: list[BaseRoute] = [Route("/api/tracks", tracks, methods=["GET"])]
