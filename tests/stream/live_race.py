"""A real LIVE race with video on: server, organizer, one racer with a house entry, launched and watched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from race_server.stream.settings import VideoSettings
from tests.conftest import LiveServer
from tests.races_api.helpers import RaceSocket, cookie_of, live_config, login, make_user, race_socket


@dataclass
class LiveRace:
    server: LiveServer
    race_id: int
    organizer: httpx.AsyncClient
    racer_id: int
    viewer_token: str
    org_ws: RaceSocket

    async def launch(self) -> dict[str, Any]:
        assert (await self.org_ws.command("launch_racer", racer_id=self.racer_id))["type"] == "ok"
        return await self.org_ws.wait_type("run_launched", racer_id=self.racer_id)


@asynccontextmanager
async def video_server(settings: Settings, *, slot_s: float, **video: Any) -> AsyncIterator[LiveServer]:
    changed = replace(settings, run_workers=False, video=VideoSettings(**video))
    server = LiveServer(changed, bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=True, countdown_s=2, time_per_racer_s=slot_s)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def live_race(server: LiveServer, settings: Settings, replay_s: float = 0) -> AsyncIterator[LiveRace]:
    """A LIVE race whose simulator (and so its video) is running, entries closed, one racer queued."""
    await make_user(settings, "organizer", "org@example.com")
    await make_user(settings, "racer", "ann@example.com", alias="ann")
    organizer = await login(server, "org@example.com")
    ann = await login(server, "ann@example.com")
    try:
        created = await organizer.post("/api/races", json=live_config(replay_s=replay_s))
        assert created.status_code == 201, created.text
        race_id, code = created.json()["id"], created.json()["invite_code"]
        racer_id = (await ann.post(f"/api/join/{code}")).json()["user_id"]
        entry = await ann.post(
            f"/api/races/{race_id}/submissions", json={"driver": "reference", "reference_speed": 1.5}
        )
        assert entry.status_code == 201, entry.text
        viewer = (await organizer.post(f"/api/races/{race_id}/viewer-token")).json()["token"]
        async with race_socket(server, race_id, cookie=cookie_of(organizer)) as org_ws:
            assert (await org_ws.command("subscribe"))["type"] == "ok"
            await org_ws.wait_type("snapshot")
            launched = await org_ws.command("launch_simulator")
            assert launched["type"] == "ok", launched
            await org_ws.wait_type("simulator", status="running", timeout=90)
            assert (await org_ws.command("set_entries_open", open=False))["type"] == "ok"
            await org_ws.wait_type("queue")
            yield LiveRace(server, race_id, organizer, racer_id, viewer, org_ws)
    finally:
        await organizer.aclose()
        await ann.aclose()
