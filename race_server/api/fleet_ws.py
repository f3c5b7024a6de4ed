"""``/ws/fleet``: the fleet page's live view of the cars (organizers).

On connect, and whenever a car links, unlinks, reports telemetry, is renamed or assigned
(``CarLinks.changes``), the socket sends ``{"type": "fleet", "cars": [...]}`` with every car as
``GET /api/fleet`` shows it. Bursts are coalesced to at most ``MAX_RATE_HZ`` messages a second
(cars report telemetry at 10 Hz each); with nothing new it still sends every ``IDLE_S`` so the page
knows the socket is alive. The socket takes no commands: the page acts through the fleet API, and
any frame it is sent is answered with an ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from race_server.api.car_ws import car_links
from race_server.api.fleet import car_json
from race_server.auth import Role, ws_requires
from race_server.db import fleet

MAX_RATE_HZ = 4.0
IDLE_S = 5.0


async def _snapshot(websocket: WebSocket) -> str:
    state = websocket.app.state
    cars = await fleet.all_cars(state.pool)
    return json.dumps({"v": 1, "type": "fleet", "cars": [car_json(state, car) for car in cars]})


async def _answer_frames(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        error: dict[str, Any] = {
            "v": 1, "type": "error", "code": "unexpected",
            "message": "this socket only sends the fleet's status; act through /api/fleet",
        }  # fmt: skip
        await websocket.send_text(json.dumps(error))


@ws_requires(Role.ORGANIZER)
async def ws_fleet(websocket: WebSocket) -> None:
    await websocket.accept()
    changes = car_links(websocket.app.state).changes
    reader = asyncio.create_task(_answer_frames(websocket), name="fleet-ws-reader")
    try:
        with changes.watch() as changed:
            while True:
                changed.clear()
                await websocket.send_text(await _snapshot(websocket))
                waiter = asyncio.ensure_future(changed.wait())
                await asyncio.wait({reader, waiter}, timeout=IDLE_S, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if reader.done():
                    return
                # coalesce a burst of telemetry into one message
                await asyncio.wait({reader}, timeout=1.0 / MAX_RATE_HZ)
                if reader.done():
                    return
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
            await reader


routes: list[BaseRoute] = [WebSocketRoute("/ws/fleet", ws_fleet)]
