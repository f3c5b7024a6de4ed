"""Timing a physical-track race: the timekeeper's buttons and the automatic lap timer.

All for the race's organizer, while a run is on the physical track (else 409 ``no_run``):
``POST /api/races/{id}/timekeeper/lap``, ``…/off-track {"delta": 1 | -1}``, ``…/dnf``,
``…/undo-lap``, ``…/pause {"paused": bool}``; ``GET /api/races/{id}/timekeeper`` (the run's state).
``POST /api/races/{id}/timer/crossings {"crossings": [unix s, …], "sent_at": unix s}`` is what
``trackside timer`` sends: its sensors' crossings, stamped on its clock (debounced again here).
Laps flow through the race's host into the same event log, overlay and leaderboard as virtual laps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server.api.errors import ApiError, field, json_body
from race_server.api.race_access import RaceRole, race_access
from race_server.auth import AuthError
from race_server.fleet.links import CarCommandError
from race_server.fleet.physical_host import PhysicalHost, PhysicalHostError

Handler = Callable[[Request, PhysicalHost], Awaitable[dict[str, Any]]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        race_id = request.path_params["race_id"]
        try:
            await race_access(request, race_id, allow=(RaceRole.ORGANIZER,))
        except AuthError as error:
            raise ApiError(error.status, error.code, error.message) from None
        factory = getattr(request.app.state, "fleet_hosts", None)
        host = factory.physical(race_id) if factory is not None else None
        if host is None:
            raise ApiError(
                409, "not_physical", f"race {race_id} is not running on the physical track (assign a car, launch)"
            )
        try:
            return JSONResponse(await handler(request, host))
        except PhysicalHostError as error:
            raise ApiError(409, "no_run", str(error)) from None
        except CarCommandError as error:
            status = 503 if error.code in ("car_offline", "car_timeout") else 409
            raise ApiError(status, error.code, f"the car: {error.message}") from None

    return endpoint


def _state(host: PhysicalHost) -> dict[str, Any]:
    track, clock = host.track, host.run_clock
    if track is None or clock is None:
        return {"on_track": False, "car_id": host.car_id}
    t = clock.t(host.clock())
    return {"on_track": not track.run.finished, "car_id": host.car_id, "paused": clock.paused, "t": t,
            **track.run.status(t)}  # fmt: skip


async def status(request: Request, host: PhysicalHost) -> dict[str, Any]:
    return _state(host)


async def lap(request: Request, host: PhysicalHost) -> dict[str, Any]:
    host.lap()
    return _state(host)


async def off_track(request: Request, host: PhysicalHost) -> dict[str, Any]:
    delta = field(await json_body(request), "delta", int)
    if delta not in (1, -1):
        raise ApiError(422, "invalid", "delta must be 1 (count an off-track) or -1 (take one back)")
    host.off_track(delta)
    return _state(host)


async def dnf(request: Request, host: PhysicalHost) -> dict[str, Any]:
    await host.dnf()
    return _state(host)


async def pause(request: Request, host: PhysicalHost) -> dict[str, Any]:
    paused = field(await json_body(request), "paused", bool)
    await host.pause(paused)
    return _state(host)


async def undo_lap(request: Request, host: PhysicalHost) -> dict[str, Any]:
    undone = host.undo_last_lap()
    if undone is None:
        raise ApiError(409, "no_lap", "this run has no completed lap to take back")
    from race_server.queue.service import leaderboard, leaderboard_event, store

    pool: asyncpg.Pool = request.app.state.pool
    race_id = host.race_id
    config = (await request.app.state.race_queue.live(race_id)).config

    async def board(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        await conn.execute("DELETE FROM race_laps WHERE run_id = $1 AND lap_no = $2", undone.run_id, undone.lap_no)
        return [leaderboard_event(await leaderboard(conn, race_id, config))]

    await store(pool, request.app.state.bus, race_id, [], board)
    return {**_state(host), "undone": {"lap": undone.lap_no, "time_ms": undone.time_ms}}


async def crossings(request: Request, host: PhysicalHost) -> dict[str, Any]:
    received_at = time.time()
    data = await json_body(request)
    stamps = field(data, "crossings", list)
    sent_at = data.get("sent_at")
    if len(stamps) > 100 or not all(
        isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s) for s in stamps
    ):
        raise ApiError(422, "invalid", "crossings must be a list of at most 100 Unix times (seconds)")
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float) or not math.isfinite(sent_at):
        raise ApiError(422, "invalid", "sent_at must be the timer's Unix time when it sent this")
    laps = sum(host.crossing(float(s), float(sent_at), received_at) for s in sorted(stamps))
    return {**_state(host), "laps_added": laps}


routes: list[BaseRoute] = [
    Route("/api/races/{race_id:int}/timekeeper", _endpoint(status), methods=["GET"]),
    Route("/api/races/{race_id:int}/timekeeper/lap", _endpoint(lap), methods=["POST"]),
    Route("/api/races/{race_id:int}/timekeeper/off-track", _endpoint(off_track), methods=["POST"]),
    Route("/api/races/{race_id:int}/timekeeper/dnf", _endpoint(dnf), methods=["POST"]),
    Route("/api/races/{race_id:int}/timekeeper/undo-lap", _endpoint(undo_lap), methods=["POST"]),
    Route("/api/races/{race_id:int}/timekeeper/pause", _endpoint(pause), methods=["POST"]),
    Route("/api/races/{race_id:int}/timer/crossings", _endpoint(crossings), methods=["POST"]),
]
