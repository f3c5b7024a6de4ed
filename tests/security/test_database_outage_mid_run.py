"""A PostgreSQL outage during a LIVE run: the race holds its events and resumes by itself.

The server reaches PostgreSQL through a TCP proxy that the test cuts for 30 s while a racer is on
track. The simulator keeps the race's clock; the laps it times meanwhile are stored once the
database is back, the run ends at its checkered flag and its laps are on the leaderboard, with no
operator. During the outage the API answers with the one JSON error shape (503), not plain text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.races_api.helpers import PASSWORD, cookie_of, live_config, login, make_user, race_socket
from tests.tcp_proxy import TcpProxy

OUTAGE_S = 30.0

pytestmark = pytest.mark.slow


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(str(settings.database_url))
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def server(settings: Settings, proxy: TcpProxy) -> AsyncIterator[LiveServer]:
    parts = urlsplit(str(settings.database_url))
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    through_proxy = replace(settings, database_url=urlunsplit(parts._replace(netloc=netloc)), run_workers=False)
    server = LiveServer(through_proxy, bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    # Real time: the run's 60 s slot must outlast the outage.
    server.app.state.race_options = RaceOptions(realtime=True, countdown_s=3)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_live_run_rides_out_a_30_s_database_outage(
    server: LiveServer, settings: Settings, proxy: TcpProxy
) -> None:
    await make_user(settings, "organizer", "org@example.com")
    organizer = await login(server, "org@example.com")
    race = (await organizer.post("/api/races", json=live_config())).json()
    async with httpx.AsyncClient(base_url=server.url) as racer:
        joined = await racer.post(f"/api/join/{race['invite_code']}",
                                  json={"email": "r@example.com", "password": PASSWORD})  # fmt: skip
        racer_id = joined.json()["user_id"]
        entered = await racer.post(f"/api/races/{race['id']}/submissions",
                                   json={"driver": "reference", "reference_speed": 2.0})  # fmt: skip
        assert entered.status_code == 201, entered.text

    async with race_socket(server, race["id"], cookie=cookie_of(organizer)) as ws:
        assert (await ws.command("subscribe"))["type"] == "ok"
        assert (await ws.command("launch_simulator"))["type"] == "ok"
        await ws.wait_type("simulator", status="running", timeout=90)
        assert (await ws.command("set_entries_open", open=False))["type"] == "ok"
        assert (await ws.command("launch_racer", racer_id=racer_id))["type"] == "ok"
        launched = await ws.wait_type("run_launched")
        await ws.wait_type("run_started", timeout=30)
        first = await ws.wait(lambda m: m["type"] == "lap" and m["valid"], timeout=40)

        await proxy.cut()
        during = await organizer.get("/api/races")
        assert during.status_code == 503
        assert during.json()["code"] == "database_unavailable"
        health = await organizer.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        await asyncio.sleep(OUTAGE_S)  # the outage itself: the scenario's length, nothing to await
        await proxy.restore()

        await ws.wait_type("checkered", run_id=launched["run_id"], timeout=60)
        # What the simulator timed during the outage reached the socket once it was stored.
        boards = [m for m in ws.seen if m["type"] == "leaderboard" and m["rows"]]
        assert boards and boards[-1]["rows"][0]["racer_id"] == racer_id

    assert (await organizer.get("/healthz")).status_code == 200
    laps = (await organizer.get(f"/api/races/{race['id']}/leaderboard")).json()
    assert laps["rows"][0]["racer_id"] == racer_id
    run_laps = await _laps(settings, launched["run_id"])
    # ~9 s laps on a 60 s slot: the laps timed during the outage were stored after it.
    assert first["lap"] == 1 and len(run_laps) >= 4
    await organizer.aclose()


async def _laps(settings: Settings, run_id: int) -> list[int]:
    import asyncpg

    conn = await asyncpg.connect(str(settings.database_url))
    try:
        rows = await conn.fetch("SELECT lap_no FROM race_laps WHERE run_id = $1 ORDER BY lap_no", run_id)
    finally:
        await conn.close()
    return [row["lap_no"] for row in rows]
