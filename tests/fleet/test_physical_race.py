"""End to end on the physical track, without hardware: a simulated-backend car (a car in
race_server.sim seen by its own camera, driven only by the car client's servo commands) links to
a real server, is assigned to a LIVE race, receives the racer's model (the car bundle, sha256-
checked), counts down, drives laps timed by the simulated lap sensor (the start line of the
simulated track, through ``trackside timer``'s client), follows the racer's speed control and
stops at time up. The laps land on the leaderboard like virtual ones.

The racer's model drives straight at 0.5 m/s; on the bends the track marshal (part of the
simulated track, as on a real one) puts the car back on the centre line.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from car_client.backends.simulated import SimulatedBackend
from car_client.navigation import throttle_for_speed
from car_client.timer import TimerClient
from race_server.api.race_runtime import RaceOptions
from race_server.fleet.physical_host import racer_colour
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import register_car, running_car, until
from tests.fleet.models import write_racer_folder
from tests.helpers import api_token
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket
from tests.races_api.test_live_race_models import import_model

SLOT_S = 40.0
COUNTDOWN_S = 3


@pytest.fixture
async def track_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(countdown_s=COUNTDOWN_S, time_per_racer_s=SLOT_S)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.slow
async def test_a_simulated_car_races_a_racers_model_on_the_physical_track(
    track_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    server = track_server
    await make_user(settings, "organizer", "org@example.com")
    ann_id = await make_user(settings, "racer", "ann@example.com", alias="ann")
    organizer = await login(server, "org@example.com")
    ann = await login(server, "ann@example.com")
    timer: TimerClient | None = None
    try:
        race = (await organizer.post("/api/races", json=live_config())).json()
        race_id = race["id"]
        assert (await ann.post(f"/api/join/{race['invite_code']}")).status_code == 200
        model = await import_model(ann, write_racer_folder(tmp_path / "ann"), "ann-straight")
        submitted = await ann.post(f"/api/races/{race_id}/submissions", json={"model_id": model["id"]})
        assert submitted.status_code == 201 and submitted.json()["loadable"], submitted.text

        car_id, car_token = await register_car(organizer, "sim-car")
        timer = TimerClient(server.url, await api_token(server, "org@example.com", "timer"), race_id)
        backend = SimulatedBackend(route_id="Bowtie_track", top_speed=2.0, on_crossing=timer.crossing)
        async with running_car(server.url, car_token, tmp_path / "car", backend) as car:
            assigned = await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": race_id})
            assert assigned.status_code == 200
            await race_on_the_physical_track(server, organizer, ann, race_id, ann_id, car, backend, timer)
    finally:
        if timer is not None:
            timer.close()
        await organizer.aclose()
        await ann.aclose()


async def race_on_the_physical_track(
    server: LiveServer,
    organizer: httpx.AsyncClient,
    ann: httpx.AsyncClient,
    race_id: int,
    ann_id: int,
    car: object,
    backend: SimulatedBackend,
    timer: TimerClient,
) -> None:
    controller = car.controller  # type: ignore[attr-defined]
    async with (
        race_socket(server, race_id, cookie=cookie_of(organizer)) as org_ws,
        race_socket(server, race_id, cookie=cookie_of(ann)) as ann_ws,
    ):
        for ws in (org_ws, ann_ws):
            assert (await ws.command("subscribe"))["type"] == "ok"
            await ws.wait_type("snapshot")
        launched = await org_ws.command("launch_simulator")
        assert launched["type"] == "ok", (launched.get("code"), launched.get("message"))
        await org_ws.wait_type("simulator", status="running", timeout=30)
        assert server.app.state.fleet_hosts.physical(race_id) is not None  # the car's race runs on the track
        assert (await org_ws.command("set_entries_open", open=False))["type"] == "ok"
        await org_ws.wait_type("queue")
        assert (await org_ws.command("launch_racer", racer_id=ann_id))["type"] == "ok"

        # Countdown on the broadcast while the car gets the racer's model and colour; Go arms it.
        first = await org_ws.wait_type("countdown", timeout=10)
        assert first["value"] == COUNTDOWN_S
        assert not controller.armed
        await org_ws.wait_type("run_started", timeout=60)
        await until(lambda: controller.armed, timeout=5)
        assert controller.model is not None and controller.model.space.kind == "discrete"
        assert controller.mode == "autonomous" and backend.light == racer_colour(ann_id)
        await until(lambda: backend.throttle > 0.0, timeout=5)
        assert backend.throttle == pytest.approx(0.8)  # 0.5 m/s of a 1 m/s action space: the stock curve

        # The racer's speed control reaches the car's throttle.
        assert (await ann_ws.command("speed_control", multiplier=0.5))["type"] == "ok"
        slower = throttle_for_speed(0.5 * 0.5, 1.0, 1.0)
        await until(lambda: backend.throttle == pytest.approx(slower), timeout=5)
        telemetry = await org_ws.wait_type("telemetry", timeout=5)
        assert telemetry["racer_id"] == ann_id and telemetry["time_remaining_ms"] > 0
        # The car reports its inference speed and latency. The loop never exceeds its 15 Hz; how close
        # it comes depends on the machine's load (a speed floor belongs in `car_client.bench`, not here).
        fleet = (await organizer.get("/api/fleet")).json()["cars"][0]["telemetry"]
        assert fleet["inference_fps"] is not None and 0 < fleet["inference_fps"] <= 16
        assert fleet["inference_ms"] is not None and fleet["inference_ms"] > 0 and fleet["rtt_ms"] is not None
        assert (await ann_ws.command("speed_control", multiplier=1.0))["type"] == "ok"
        await until(lambda: backend.throttle == pytest.approx(0.8), timeout=5)

        # Laps come from the simulated lap sensor at the start line.
        # (both sockets read on, so neither falls behind its keepalive)
        lap: dict[str, Any]
        lap, _ = await asyncio.gather(
            org_ws.wait(lambda m: m.get("type") == "lap" and m.get("valid") is True, timeout=SLOT_S + 10),
            ann_ws.wait(lambda m: m.get("type") == "lap" and m.get("valid") is True, timeout=SLOT_S + 10),
        )
        assert lap["racer_id"] == ann_id and lap["lap"] == 1 and lap["time_ms"] > 2000
        print(f"physical lap 1: {lap['time_ms']} ms, marshal resets so far {backend.marshal_resets}")
        assert len(timer.sent) >= 1 and len(backend.crossings) >= 1
        board = await org_ws.wait(lambda m: m.get("type") == "leaderboard" and bool(m.get("rows")), timeout=10)
        assert board["rows"][0]["racer_id"] == ann_id and board["rows"][0]["laps"] >= 1

        # Time up: checkered flag, and the car stops.
        await asyncio.gather(
            org_ws.wait_type("checkered", timeout=SLOT_S + 10), ann_ws.wait_type("checkered", timeout=SLOT_S + 10)
        )
        await until(lambda: not controller.armed and backend.throttle == 0.0, timeout=5)
        refused = await ann_ws.command("speed_control", multiplier=1.5)
        assert refused["type"] == "error"
