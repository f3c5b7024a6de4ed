"""A track's outline for the workshop's track picture: ``GET /api/tracks/{track_id}/outline``.

Centre line and both borders, thinned to at most ``POINTS`` points each, in the driving direction
asked for (``?direction=CLOCKWISE|COUNTER_CLOCKWISE``, default the track's own), so the page can
draw the track and an arrow the way the car drives.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError
from race_server.auth import requires
from race_server.sim.tracks import load_console_track

POINTS = 120


def _thin(points: Any) -> list[list[float]]:
    step = max(1, len(points) // POINTS)
    return [[round(float(x), 3), round(float(y), 3)] for x, y in points[::step]]


@requires()
async def track_outline(request: Request) -> Response:
    direction = request.query_params.get("direction") or None
    try:
        track = load_console_track(request.path_params["track_id"], direction)
    except ValueError as error:
        raise ApiError(404 if "track_id" in str(error) else 422, "invalid", str(error)) from None
    return JSONResponse(
        {
            "centre": _thin(track.waypoints),
            "inner": _thin(track.inner_border),
            "outer": _thin(track.outer_border),
        },
        headers={"Cache-Control": "max-age=3600"},
    )


routes: list[BaseRoute] = [Route("/api/tracks/{track_id}/outline", track_outline, methods=["GET"])]
