"""20 LIVE races with launched simulators on a pool of 10 connections: the server keeps answering.

Each race used to keep a pooled connection for its ownership lease, so ten launched simulators
took the whole pool: /healthz went 503, the API and websocket handshakes timed out and shutdown
hung. Now every race this process owns shares one lease connection (race_server.queue.lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import numpy as np
import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket

RACES = 20
POOL = 10

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, db_pool_max=POOL, run_workers=False), bus_prefix=f"t-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=True, countdown_s=3)
    await server.start()
    try:
        yield server
    finally:
        await asyncio.wait_for(server.stop(), 60)  # it used to hang in Pool.close()


async def test_twenty_launched_live_races_leave_the_pool_to_the_api(server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "organizer", "org@example.com")
    organizer = await login(server, "org@example.com")
    ids = [(await organizer.post("/api/races", json=live_config(name=f"LIVE {n}"))).json()["id"] for n in range(RACES)]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(race_socket(server, race_id, cookie=cookie_of(organizer)))
                   for race_id in ids]  # fmt: skip
        for ws in sockets:
            assert (await ws.command("subscribe"))["type"] == "ok"
            assert (await ws.command("launch_simulator"))["type"] == "ok"
        for ws in sockets:
            await ws.wait_type("simulator", status="running", timeout=300)

        latencies: list[float] = []
        loop = asyncio.get_running_loop()
        for _ in range(50):
            for path in ("/healthz", "/api/races", f"/api/races/{ids[-1]}/leaderboard"):
                started = loop.time()
                response = await organizer.get(path)
                latencies.append(loop.time() - started)
                assert response.status_code == 200, (path, response.text)
        assert float(np.percentile(latencies, 99)) < 0.5, sorted(latencies)[-5:]

        # A new socket's handshake and snapshot still go through.
        async with race_socket(server, ids[0], cookie=cookie_of(organizer)) as late:
            assert (await late.command("subscribe"))["type"] == "ok"
            await late.wait_type("snapshot", timeout=10)
    await organizer.aclose()
