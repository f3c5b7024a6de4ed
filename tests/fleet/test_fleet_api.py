"""The organizer's fleet API against a real server and a real car client on the bench."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import BenchBackend, register_car, running_car, until
from tests.helpers import login, make_user
from tests.races_api.helpers import classic_config, live_config


@pytest.fixture
async def organizer(live_server: LiveServer, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await make_user(settings, "organizer", "org@example.com")
    async with login(live_server, "org@example.com") as client:
        yield client


async def test_cars_come_online_are_named_coloured_assigned_and_stopped(
    live_server: LiveServer, settings: Settings, organizer: httpx.AsyncClient, tmp_path: Path
) -> None:
    car_id, token = await register_car(organizer, "blue")
    other_id, other_token = await register_car(organizer, "red")
    listed = (await organizer.get("/api/fleet")).json()["cars"]
    assert [(c["id"], c["online"], c["last_seen_at"]) for c in listed] == [
        (car_id, False, None),
        (other_id, False, None),
    ]

    backend = BenchBackend()
    async with running_car(live_server.url, token, tmp_path / "blue", backend) as car:
        await until(lambda: live_server.app.state.car_links.get(car_id).telemetry is not None)
        blue = (await organizer.get(f"/api/fleet/{car_id}")).json()
        assert blue["online"] and blue["hardware"] == "bench" and blue["last_seen_at"] is not None
        assert blue["telemetry"]["battery_pct"] == 87.0 and blue["telemetry"]["mode"] == "autonomous"
        assert blue["software"].startswith("trackside-car") and blue["calibration"]["throttle"]["polarity"] == -1
        assert blue["capabilities"] == ["camera", "tail_light"] and blue["models"] == []

        renamed = await organizer.patch(f"/api/fleet/{car_id}", json={"name": "Blue Thunder", "tail_light": "#00FF88"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Blue Thunder"
        assert backend.light == "#00ff88"  # the car's LEDs follow at once
        bad_colour = await organizer.patch(f"/api/fleet/{car_id}", json={"tail_light": "green"})
        assert bad_colour.status_code == 422 and "#ff8800" in bad_colour.json()["error"]

        # Commands get the car's own answer; bad input never reaches the car.
        calibration = (await organizer.post(f"/api/fleet/{car_id}/commands", json={"type": "get_calibration"})).json()
        assert calibration["data"]["steering"]["mid"] == 1_450_000
        wrong = {
            **calibration["data"],
            "steering": {"min": 1_500_000, "mid": 1_450_000, "max": 1_700_000, "polarity": 1},
        }
        refused = await organizer.post(
            f"/api/fleet/{car_id}/commands", json={"type": "set_calibration", "calibration": wrong}
        )
        assert refused.status_code == 409 and refused.json()["code"] == "invalid_calibration"
        assert "max > mid > min" in refused.json()["error"]
        assert car.controller.calibration.steering.min == 1_200_000  # nothing stored was lost
        good = {
            **calibration["data"],
            "steering": {"min": 1_100_000, "mid": 1_400_000, "max": 1_800_000, "polarity": -1},
        }
        saved = await organizer.post(
            f"/api/fleet/{car_id}/commands", json={"type": "set_calibration", "calibration": good}
        )
        assert saved.status_code == 200 and backend.calibration.steering.polarity == -1
        assert (tmp_path / "blue" / "calibration.json").exists()
        out_of_range = await organizer.post(f"/api/fleet/{car_id}/commands", json={"type": "set_max_speed", "value": 3})
        assert out_of_range.status_code == 422 and out_of_range.json()["code"] == "out_of_range"
        not_forwarded = await organizer.post(f"/api/fleet/{car_id}/commands", json={"type": "load_model"})
        assert not_forwarded.status_code == 422
        no_model = await organizer.post(f"/api/fleet/{car_id}/commands", json={"type": "arm"})
        assert no_model.status_code == 409 and no_model.json()["code"] == "no_model"

        # Assignment: LIVE races only, one car per race.
        live = (await organizer.post("/api/races", json=live_config())).json()["id"]
        classic = (await organizer.post("/api/races", json=classic_config())).json()["id"]
        assert (await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": classic})).status_code == 422
        assert (await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": 999_999})).status_code == 404
        assigned = await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": live})
        assert assigned.status_code == 200 and assigned.json()["race_id"] == live
        taken = await organizer.put(f"/api/fleet/{other_id}/race", json={"race_id": live})
        assert taken.status_code == 409 and "already has a car" in taken.json()["error"]

        # E-stop for all cars: the linked one stops, the offline one is not there to answer.
        await organizer.post(f"/api/fleet/{car_id}/commands", json={"type": "set_mode", "mode": "manual"})
        assert (await organizer.post(f"/api/fleet/{car_id}/commands", json={"type": "arm"})).status_code == 200
        everyone = await organizer.post("/api/fleet/estop")
        assert everyone.json() == {"results": {str(car_id): "ok"}}
        assert car.controller.estop and not car.controller.armed and backend.neutral_at is not None
        offline = await organizer.post(f"/api/fleet/{other_id}/estop")
        assert offline.status_code == 503 and offline.json()["code"] == "car_offline"
    await until(lambda: live_server.app.state.car_links.get(car_id) is None)
    gone = (await organizer.get(f"/api/fleet/{car_id}")).json()
    assert not gone["online"] and gone["last_seen_at"] is not None

    await make_user(settings, "racer", "r@example.com", alias="racer1")
    async with login(live_server, "r@example.com") as racer:
        assert (await racer.get("/api/fleet")).status_code == 403
    async with httpx.AsyncClient(base_url=live_server.url, headers={"authorization": f"Bearer {other_token}"}) as car:
        assert (await car.get("/api/car/bundles/" + "0" * 64)).status_code == 404  # nothing offered to it
