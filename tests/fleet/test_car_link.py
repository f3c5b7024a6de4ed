"""The server side of /ws/car spoken by hand: registration, error replies with the race
websocket's codes, 10 Hz heartbeats, and a silent car closed and shown offline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from race_server import protocol as p
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import hello_frame, register_car
from tests.helpers import login, make_user


@pytest.fixture
async def organizer(live_server: LiveServer, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await make_user(settings, "organizer", "org@example.com")
    async with login(live_server, "org@example.com") as client:
        yield client


async def next_of(ws: websockets.ClientConnection, kind: str) -> dict[str, object]:
    while True:
        message = dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        if message["type"] == kind:
            return message


async def drain(ws: websockets.ClientConnection) -> None:
    """Read (the server's heartbeats) until the server closes the link."""
    while True:
        await asyncio.wait_for(ws.recv(), 5)


async def test_the_car_link_answers_registers_and_closes_a_silent_car(
    live_server: LiveServer, organizer: httpx.AsyncClient
) -> None:
    car_id, token = await register_car(organizer)
    url = f"{live_server.ws_url}/ws/car"
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send('{"v": 1, "type": "heartbeat", "seq": 0, "t": 0}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4002  # hello comes first

    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(hello_frame(hardware="hand-rolled"))
        welcome = await next_of(ws, "welcome")
        assert welcome["car_id"] == car_id and welcome["heartbeat_hz"] == 10 and welcome["dead_man_ms"] == 300

        for frame, code in (("{nope", "bad_encoding"), ("x" * (p.MAX_MESSAGE_BYTES + 1), "too_large"),
                            ('{"v": 1, "type": "launch", "req": 9}', "unknown_type")):  # fmt: skip
            await ws.send(frame)
            error = await next_of(ws, "error")
            assert error["code"] == code, error

        # The server's heartbeats arrive at 10 Hz; the car answers for a while, then goes quiet.
        started = time.monotonic()
        beats = 0
        while beats < 10:
            beat = await next_of(ws, "heartbeat")
            beats += 1
            await ws.send(json.dumps({"v": 1, "type": "heartbeat", "seq": beats, "t": time.monotonic(),
                                      "echo_t": beat["t"], "held_ms": 0.0}))  # fmt: skip
        assert 0.5 <= time.monotonic() - started <= 3.0
        fleet = (await organizer.get(f"/api/fleet/{car_id}")).json()
        assert fleet["online"] and fleet["hardware"] == "hand-rolled" and fleet["rtt_ms"] is not None

        with pytest.raises(ConnectionClosed) as closed:
            await drain(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    fleet = (await organizer.get(f"/api/fleet/{car_id}")).json()
    assert not fleet["online"]
