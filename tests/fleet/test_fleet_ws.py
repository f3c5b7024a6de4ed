"""``/ws/fleet``: the fleet page's push. Organizers get every car at once and again on each change
(a car added, linking, its telemetry, a rename, going away); racers are shut out; the socket takes
no input and says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import register_car, running_car
from tests.races_api.helpers import cookie_of, login, make_user


async def next_fleet(ws: Any, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """The first fleet message whose cars satisfy ``predicate``."""

    async def read() -> list[dict[str, Any]]:
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "fleet" and predicate(message["cars"]):
                cars: list[dict[str, Any]] = message["cars"]
                return cars

    return await asyncio.wait_for(read(), timeout)


async def test_the_fleet_socket_pushes_each_change_to_organizers_only(
    live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    await make_user(settings, "racer", "r@example.com", alias="racer1")
    organizer = await login(live_server, "org@example.com")
    racer = await login(live_server, "r@example.com")
    url = f"{live_server.ws_url}/ws/fleet"
    try:
        async with websockets.connect(url, additional_headers={"Cookie": cookie_of(organizer)}) as ws:
            assert await next_fleet(ws, lambda cars: True) == []
            car_id, token = await register_car(organizer, "blue")
            cars = await next_fleet(ws, lambda cars: len(cars) == 1)
            assert cars[0]["name"] == "blue" and cars[0]["online"] is False
            async with running_car(live_server.url, token, tmp_path / "car"):
                cars = await next_fleet(ws, lambda cars: cars[0]["online"] and cars[0]["telemetry"] is not None)
                assert cars[0]["telemetry"]["battery_pct"] == 87.0 and cars[0]["hardware"] == "bench"
                await organizer.patch(f"/api/fleet/{car_id}", json={"name": "Blue Thunder"})
                await next_fleet(ws, lambda cars: cars[0]["name"] == "Blue Thunder")
                await ws.send(json.dumps({"v": 1, "type": "estop"}))
                answer = await next_message(ws, "error")
                assert answer["code"] == "unexpected" and "/api/fleet" in answer["message"]
            cars = await next_fleet(ws, lambda cars: not cars[0]["online"])
            assert cars[0]["last_seen_at"] is not None

        async with websockets.connect(url, additional_headers={"Cookie": cookie_of(racer)}) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    finally:
        await organizer.aclose()
        await racer.aclose()


async def next_message(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] == kind:
            return message
