"""The organizer's fleet: every car with its status, name, tail-light colour and race; commands
to a car (with the car's own ok/error), e-stop per car and for all cars.

Cars are registered with ``POST /api/cars`` (it returns the car's token) and register their
hardware, software and capabilities themselves when they link (``/ws/car``). Status: ``online``
(linked to this server now), ``last_seen_at``, and the car's latest telemetry (mode, armed,
e-stop, model, battery, inference fps/latency, link RTT).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from race_server import protocol as p
from race_server.api.car_ws import car_links
from race_server.api.errors import ApiError, field, json_body
from race_server.auth import Role, requires
from race_server.db import fleet, races
from race_server.fleet.links import CarCommandError

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
CAR_NAME = re.compile(r"^[A-Za-z0-9 _.-]{1,64}$")
# load_model is the physical race's job (the bundle must be offered to the car first)
FORWARDED = frozenset(p.CAR_COMMAND_TYPES) - {"welcome", "heartbeat", "load_model"}


def car_json(state: object, car: fleet.FleetCar) -> dict[str, Any]:
    """A car as the fleet API and the fleet page's socket show it: stored fields, link status."""
    link = car_links(state).get(car.id)
    status = link.status() if link is not None else {"online": False, "telemetry": None}
    return {**car.as_json(), **status}


async def _car(request: Request) -> fleet.FleetCar:
    car = await fleet.get(request.app.state.pool, request.path_params["car_id"])
    if car is None:
        raise ApiError(404, "not_found", f"no car {request.path_params['car_id']}")
    return car


def _command_error(error: CarCommandError) -> ApiError:
    status = 503 if error.code in ("car_offline", "car_timeout") else 409
    return ApiError(status, error.code, error.message)


@requires(Role.ORGANIZER)
async def list_fleet(request: Request) -> Response:
    cars = await fleet.all_cars(request.app.state.pool)
    return JSONResponse({"cars": [car_json(request.app.state, car) for car in cars]})


@requires(Role.ORGANIZER)
async def get_car(request: Request) -> Response:
    return JSONResponse(car_json(request.app.state, await _car(request)))


@requires(Role.ORGANIZER)
async def update_car(request: Request) -> Response:
    car = await _car(request)
    data = await json_body(request)
    unknown = sorted(set(data) - {"name", "tail_light"})
    if unknown:
        raise ApiError(422, "invalid", f"unexpected field(s) {', '.join(unknown)}; allowed: name, tail_light")
    name = field(data, "name", str, required=False)
    colour = field(data, "tail_light", str, required=False)
    if name is not None and not CAR_NAME.match(name):
        raise ApiError(422, "invalid", "car name may use 1-64 letters, digits, space, '_', '.', '-'")
    if colour is not None and not COLOUR.match(colour):
        raise ApiError(422, "invalid", "tail_light must be a colour like #ff8800")
    try:
        updated = await fleet.update(
            request.app.state.pool, car.id, name=name, tail_light=colour.lower() if colour else None
        )
    except fleet.CarTaken as error:
        raise ApiError(409, "conflict", str(error)) from None
    assert updated is not None
    car_links(request.app.state).changes.notify()
    link = car_links(request.app.state).get(car.id)
    if colour is not None and link is not None:
        try:
            await link.command("tail_light", colour=colour.lower())
        except CarCommandError as error:
            raise _command_error(error) from None
    return JSONResponse(car_json(request.app.state, updated))


@requires(Role.ORGANIZER)
async def assign_car(request: Request) -> Response:
    """Assign the car to a LIVE race (that race is then run on the physical track) or unassign (null)."""
    car = await _car(request)
    data = await json_body(request)
    if "race_id" not in data:
        raise ApiError(422, "invalid", "field 'race_id' is required (a LIVE race id, or null to unassign)")
    race_id = data["race_id"]
    pool = request.app.state.pool
    if race_id is not None:
        if isinstance(race_id, bool) or not isinstance(race_id, int):
            raise ApiError(422, "invalid", "race_id must be an integer or null")
        race = await races.get(pool, race_id)
        if race is None:
            raise ApiError(404, "not_found", f"no race {race_id}")
        if race.format != "live":
            raise ApiError(422, "invalid", "physical cars race in LIVE races only")
    try:
        updated = await fleet.assign(pool, car.id, race_id)
    except fleet.CarTaken as error:
        raise ApiError(409, "conflict", str(error)) from None
    assert updated is not None
    car_links(request.app.state).changes.notify()
    return JSONResponse(car_json(request.app.state, updated))


@requires(Role.ORGANIZER)
async def command_car(request: Request) -> Response:
    """Any car command but load_model: ``{"type": "set_max_speed", "value": 0.5}`` → the car's answer."""
    car = await _car(request)
    data = await json_body(request)
    kind = field(data, "type", str)
    if kind not in FORWARDED:
        raise ApiError(422, "invalid", f"type {kind!r}; allowed: {', '.join(sorted(FORWARDED))}")
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        p.CAR_COMMAND_TYPES[kind].model_validate({"req": "check", **fields})
    except ValidationError as error:
        problem = p._translate(kind, error, None)
        raise ApiError(422, problem.code, problem.message) from None
    try:
        answer = await car_links(request.app.state).command(car.id, kind, **fields)
    except CarCommandError as error:
        raise _command_error(error) from None
    return JSONResponse({"ok": True, "data": answer})


@requires(Role.ORGANIZER)
async def estop_car(request: Request) -> Response:
    car = await _car(request)
    try:
        await car_links(request.app.state).command(car.id, "estop")
    except CarCommandError as error:
        raise _command_error(error) from None
    return JSONResponse({"ok": True})


@requires(Role.ORGANIZER)
async def estop_all(request: Request) -> Response:
    results = await car_links(request.app.state).estop_all()
    return JSONResponse({"results": {str(k): v for k, v in results.items()}})


routes: list[BaseRoute] = [
    Route("/api/fleet", list_fleet, methods=["GET"]),
    Route("/api/fleet/estop", estop_all, methods=["POST"]),
    Route("/api/fleet/{car_id:int}", get_car, methods=["GET"]),
    Route("/api/fleet/{car_id:int}", update_car, methods=["PATCH"]),
    Route("/api/fleet/{car_id:int}/race", assign_car, methods=["PUT"]),
    Route("/api/fleet/{car_id:int}/commands", command_car, methods=["POST"]),
    Route("/api/fleet/{car_id:int}/estop", estop_car, methods=["POST"]),
]
