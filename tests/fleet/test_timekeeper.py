"""Manual timing on the physical track: the timekeeper's lap, off-track ±, undo last lap, pause
and DNF produce laps and penalties on the same leaderboard as virtual ones; the APIs refuse
clearly when no physical run is on track. A car on the bench (no simulator) takes the run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import BenchBackend, register_car, running_car, until
from tests.fleet.models import write_racer_folder
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket
from tests.races_api.test_live_race_models import import_model

SLOT_S = 60.0


@pytest.fixture
async def track_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(countdown_s=1, time_per_racer_s=SLOT_S)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_timekeeper_times_a_physical_run_onto_the_leaderboard(
    track_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    server = track_server
    await make_user(settings, "organizer", "org@example.com")
    ann_id = await make_user(settings, "racer", "ann@example.com", alias="ann")
    organizer = await login(server, "org@example.com")
    ann = await login(server, "ann@example.com")
    try:
        race = (await organizer.post("/api/races", json=live_config())).json()
        race_id = race["id"]
        base = f"/api/races/{race_id}/timekeeper"
        not_yet = await organizer.post(f"{base}/lap")
        assert not_yet.status_code == 409 and not_yet.json()["code"] == "not_physical"
        assert (await ann.post(f"/api/join/{race['invite_code']}")).status_code == 200
        assert (await ann.post(f"{base}/lap")).status_code == 403  # racers do not time themselves
        model = await import_model(ann, write_racer_folder(tmp_path / "ann"), "ann-straight")
        assert (await ann.post(f"/api/races/{race_id}/submissions", json={"model_id": model["id"]})).status_code == 201
        car_id, car_token = await register_car(organizer, "bench-car")
        backend = BenchBackend()
        async with running_car(server.url, car_token, tmp_path / "car", backend) as car:
            assert (await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": race_id})).status_code == 200
            async with race_socket(server, race_id, cookie=cookie_of(organizer)) as ws:
                assert (await ws.command("subscribe"))["type"] == "ok"
                await ws.wait_type("snapshot")
                assert (await ws.command("launch_simulator"))["type"] == "ok"
                await ws.wait_type("simulator", status="running", timeout=30)
                idle = await organizer.post(f"{base}/lap")
                assert idle.status_code == 409 and idle.json()["code"] == "no_run"
                assert (await ws.command("set_entries_open", open=False))["type"] == "ok"
                await ws.wait_type("queue")
                assert (await ws.command("launch_racer", racer_id=ann_id))["type"] == "ok"
                await ws.wait_type("run_started", timeout=60)
                await until(lambda: car.controller.armed)
                await time_by_hand(organizer, base, ws, ann_id, car, backend)
    finally:
        await organizer.aclose()
        await ann.aclose()


async def time_by_hand(
    organizer: httpx.AsyncClient, base: str, ws: object, ann_id: int, car: object, backend: BenchBackend
) -> None:
    controller = car.controller  # type: ignore[attr-defined]
    first = await organizer.post(f"{base}/lap")
    assert first.status_code == 200 and first.json()["laps"] == 1
    lap = await ws.wait(lambda m: m.get("type") == "lap")  # type: ignore[attr-defined]
    assert lap["racer_id"] == ann_id and lap["lap"] == 1 and lap["valid"]
    board = await ws.wait(lambda m: m.get("type") == "leaderboard" and bool(m.get("rows")))  # type: ignore[attr-defined]
    assert board["rows"][0]["racer_id"] == ann_id and board["rows"][0]["time_ms"] == lap["time_ms"]

    off = await organizer.post(f"{base}/off-track", json={"delta": 1})
    assert off.status_code == 200 and off.json()["off_track"] == 1
    penalty = await ws.wait(lambda m: m.get("type") == "penalty")  # type: ignore[attr-defined]
    assert penalty["kind"] == "off_track"
    back = await organizer.post(f"{base}/off-track", json={"delta": -1})
    assert back.json()["off_track"] == 0
    bad = await organizer.post(f"{base}/off-track", json={"delta": 3})
    assert bad.status_code == 422 and "1 (count an off-track)" in bad.json()["error"]

    # A false lap (a hand on the button) is taken back: off the leaderboard and out of the database.
    assert (await organizer.post(f"{base}/lap")).json()["laps"] == 2
    await ws.wait(lambda m: m.get("type") == "lap" and m.get("lap") == 2)  # type: ignore[attr-defined]
    undone = await organizer.post(f"{base}/undo-lap")
    assert undone.status_code == 200 and undone.json()["undone"]["lap"] == 2 and undone.json()["laps"] == 1
    board = await ws.wait(lambda m: m.get("type") == "leaderboard" and m["rows"][0]["laps"] == 1)  # type: ignore[attr-defined]
    assert board["rows"][0]["time_ms"] == lap["time_ms"]

    # Pause: the car stops and the clock with it; resume re-arms the car.
    paused = await organizer.post(f"{base}/pause", json={"paused": True})
    assert paused.status_code == 200 and paused.json()["paused"] and not controller.armed
    frozen = paused.json()["time_remaining_ms"]
    assert (await organizer.get(base)).json()["time_remaining_ms"] == frozen
    resumed = await organizer.post(f"{base}/pause", json={"paused": False})
    assert resumed.status_code == 200 and not resumed.json()["paused"] and controller.armed

    # DNF: the lap in progress is invalid, the run ends failed, the car stops.
    dnf = await organizer.post(f"{base}/dnf")
    assert dnf.status_code == 200 and not dnf.json()["on_track"]
    invalid = await ws.wait(lambda m: m.get("type") == "lap" and m.get("valid") is False)  # type: ignore[attr-defined]
    assert invalid["reason"] == "run_failed"
    failed = await ws.wait_type("run_failed")  # type: ignore[attr-defined]
    assert "DNF" in failed["reason"]
    assert not controller.armed and backend.throttle == 0.0
    after = await organizer.post(f"{base}/lap")
    assert after.status_code == 409 and after.json()["code"] == "no_run"
