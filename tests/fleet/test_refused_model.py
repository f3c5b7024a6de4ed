"""A model the car cannot drive is refused by the car before it is armed, and the run fails with
the car's reason for the organizer to read; the car never moves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import BenchBackend, register_car, running_car
from tests.fleet.models import write_racer_folder, write_straight_onnx
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket
from tests.races_api.test_live_race_models import import_model


@pytest.fixture
async def track_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(countdown_s=1, time_per_racer_s=30.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_car_refuses_a_model_that_does_not_fit_and_the_run_fails_with_its_reason(
    track_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    server = track_server
    await make_user(settings, "organizer", "org@example.com")
    ann_id = await make_user(settings, "racer", "ann@example.com", alias="ann")
    organizer = await login(server, "org@example.com")
    ann = await login(server, "ann@example.com")
    try:
        race = (await organizer.post("/api/races", json=live_config())).json()
        assert (await ann.post(f"/api/join/{race['invite_code']}")).status_code == 200
        folder = write_racer_folder(tmp_path / "ann")
        write_straight_onnx(folder / "model.onnx", n_actions=5, favourite=1)  # 5 outputs, 10 actions
        model = await import_model(ann, folder, "ann-mismatch")
        submitted = await ann.post(f"/api/races/{race['id']}/submissions", json={"model_id": model["id"]})
        assert submitted.status_code == 201
        car_id, token = await register_car(organizer)
        backend = BenchBackend()
        async with running_car(server.url, token, tmp_path / "car", backend) as car:
            assert (await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": race["id"]})).status_code == 200
            async with race_socket(server, race["id"], cookie=cookie_of(organizer)) as ws:
                assert (await ws.command("subscribe"))["type"] == "ok"
                await ws.wait_type("snapshot")
                assert (await ws.command("launch_simulator"))["type"] == "ok"
                await ws.wait_type("simulator", status="running", timeout=30)
                assert (await ws.command("set_entries_open", open=False))["type"] == "ok"
                await ws.wait_type("queue")
                assert (await ws.command("launch_racer", racer_id=ann_id))["type"] == "ok"
                failed = await ws.wait_type("run_failed", timeout=60)
            assert "the car refused the run: bad_model" in failed["reason"]
            assert "outputs 5 values" in failed["reason"] and "needs 10" in failed["reason"]
            assert car.controller.model is None and not car.controller.armed
            assert backend.throttle == 0.0
    finally:
        await organizer.aclose()
        await ann.aclose()
