"""The fleet page and the timekeeper panel in Chromium, against a real server and real car clients.

Fleet: the organizer finds Fleet in the navigation, adds a car (its token shown once), starts a
simulated car (car_client's simulated backend: a car in race_server.sim driven by its servo
commands) with that token, sees it come online pushed over /ws/fleet, names it, sets its LED color,
assigns it to a LIVE race, and presses its E-stop while it drives: the car itself reports neutral
throttle and disarmed, and so does the page. E-stop all cars does the same; a car that goes away
shows offline with when it was last seen.

Timekeeper: a LIVE race with a car (on the bench) assigned runs on the physical track; the
organizer reaches the Timekeeper panel from the control panel and times a lap onto the LEADERBOARD,
counts and takes back an off-track, takes back a false lap, pauses and resumes, and ends with DNF.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from car_client.backends.simulated import SimulatedBackend
from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import BenchBackend, register_car, running_car, until
from tests.fleet.models import write_racer_folder
from tests.helpers import make_user
from tests.races_api.helpers import live_config, login
from tests.races_api.test_live_race_models import import_model
from tests.web.conftest import screenshot
from tests.web.helpers import api_as, sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
async def track_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(countdown_s=2, time_per_racer_s=120.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def fact(card: Any, name: str) -> Any:
    return card.locator(f'[data-fact="{name}"]')


@pytest.mark.slow
async def test_the_organizer_sees_a_simulated_car_come_online_assigns_it_and_e_stops_it(
    live_server: LiveServer, settings: Settings, new_context: Any, tmp_path: Path
) -> None:
    server = live_server
    await make_user(settings, "organizer", "org@example.com", alias="org")
    context = await new_context(viewport={"width": 1440, "height": 1000})
    page = await sign_in(context, server, "org@example.com")
    race_id = (await api_as(context, "POST", "/api/races", server, live_config()))["id"]

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Fleet").click()
    await expect(page.get_by_role("heading", name="Fleet", exact=True)).to_be_visible()
    await expect(page.get_by_text("0 of 0 cars online")).to_be_visible()
    add = page.get_by_role("region", name="Add a car")
    await add.get_by_label("New car name").fill("sim-car")
    await add.get_by_role("button", name="Add car").click()
    token = await add.get_by_role("textbox", name="Car token").input_value()
    assert token.startswith("tsc_")
    card = page.get_by_role("article", name="sim-car")
    await expect(card.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    await expect(card).to_contain_text("Last seen never")
    await expect(card.get_by_role("button", name="E-stop sim-car")).to_be_disabled()

    backend = SimulatedBackend(route_id="Bowtie_track", top_speed=2.0)
    async with running_car(server.url, token, tmp_path / "car", backend) as car:
        # It comes online on the page by itself (pushed, no reload).
        await expect(card).to_have_attribute("data-online", "true", timeout=10_000)
        await expect(card.get_by_role("status").filter(has_text="Online")).to_be_visible()
        await expect(fact(card, "Vehicle battery level")).to_have_text("100 %")
        await expect(fact(card, "Model")).to_have_text("No model loaded")
        await expect(fact(card, "Mode")).to_have_text("Autonomous driving")
        await expect(fact(card, "Hardware")).to_have_text("simulated")

        # Name, LED color, race.
        await card.get_by_label("Car name").fill("Blue Thunder")
        await card.get_by_role("button", name="Save name").click()
        card = page.get_by_role("article", name="Blue Thunder")
        await expect(card).to_be_visible()
        await card.get_by_label("LED color").select_option(label="Sky Blue")
        await expect(card.get_by_role("status").filter(has_text="LED color set.")).to_be_visible()
        await until(lambda: backend.light == "#00bfff")
        await card.get_by_label("Race").select_option(label="Friday night LIVE")
        await expect(card.get_by_role("status").filter(has_text="Assigned")).to_be_visible()
        listed = (await api_as(context, "GET", "/api/fleet", server))["cars"][0]
        assert listed["race_id"] == race_id and listed["name"] == "Blue Thunder"
        await expect(card.get_by_role("link", name="Timekeeper panel")).to_have_attribute(
            "href", f"/races/{race_id}/timekeeper"
        )

        # The car drives (manual driving), then the organizer presses its E-stop.
        car_id = listed["id"]
        await drive(context, server, car_id)
        await until(lambda: car.controller.armed and backend.throttle > 0.0)
        await expect(card).to_have_attribute("data-armed", "true")
        await expect(fact(card, "Mode")).to_have_text("Manual driving")
        await expect(fact(card, "Throttle")).not_to_have_text("Neutral")
        await screenshot(page, "30-fleet-car-driving")
        await card.get_by_role("button", name="E-stop Blue Thunder").click()
        await until(lambda: car.controller.estop and not car.controller.armed, timeout=5)
        assert backend.throttle == 0.0 and backend.steering == 0.0 and backend.neutral_at is not None
        await expect(card).to_have_attribute("data-estop", "true")
        await expect(card).to_have_attribute("data-armed", "false")
        await expect(card).to_have_attribute("data-throttle", "0")
        await expect(fact(card, "Armed")).to_have_text("Disarmed")
        await expect(fact(card, "Throttle")).to_have_text("Neutral")
        await expect(card.get_by_text("E-stop latched")).to_be_visible()
        await screenshot(page, "31-fleet-e-stopped")
        refused = await context.request.post(f"{server.url}/api/fleet/{car_id}/commands", data={"type": "arm"})
        assert refused.status == 409 and (await refused.json())["code"] == "estop_latched"

        # Clear e-stop, drive again, then E-stop all cars.
        await card.get_by_role("button", name="Clear e-stop").click()
        await expect(card).to_have_attribute("data-estop", "false")
        assert not car.controller.estop and not car.controller.armed  # clearing does not start the car
        await drive(context, server, car_id)
        await until(lambda: car.controller.armed and backend.throttle > 0.0)
        await page.get_by_role("button", name="E-stop all cars").click()
        await expect(
            page.get_by_role("status").filter(has_text="E-stop all cars: Blue Thunder: stopped")
        ).to_be_visible()
        await until(lambda: car.controller.estop and not car.controller.armed and backend.throttle == 0.0, timeout=5)
        await expect(card).to_have_attribute("data-estop", "true")

    # The car is switched off: offline, with when it was last seen.
    await expect(card).to_have_attribute("data-online", "false", timeout=10_000)
    await expect(card).to_contain_text("Last seen")
    await expect(card).not_to_contain_text("Last seen never")
    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, "32-fleet-offline-phone")


async def drive(context: Any, server: LiveServer, car_id: int) -> None:
    for command in (
        {"type": "set_mode", "mode": "manual"},
        {"type": "arm"},
        {"type": "drive", "angle": 0.2, "throttle": 0.5},
    ):
        await api_as(context, "POST", f"/api/fleet/{car_id}/commands", server, command)


@pytest.mark.slow
async def test_the_timekeeper_panel_times_a_lap_onto_the_leaderboard(
    track_server: LiveServer, settings: Settings, new_context: Any, tmp_path: Path
) -> None:
    server = track_server
    await make_user(settings, "organizer", "org@example.com", alias="org")
    await make_user(settings, "racer", "ann@example.com", alias="ann")
    context = await new_context(viewport={"width": 1440, "height": 1000})
    page = await sign_in(context, server, "org@example.com")
    race = await api_as(context, "POST", "/api/races", server, live_config())
    race_id = race["id"]
    ann = await login(server, "ann@example.com")
    organizer = await login(server, "org@example.com")
    try:
        assert (await ann.post(f"/api/join/{race['invite_code']}")).status_code == 200
        model = await import_model(ann, write_racer_folder(tmp_path / "ann"), "ann-straight")
        assert (await ann.post(f"/api/races/{race_id}/submissions", json={"model_id": model["id"]})).status_code == 201
        car_id, car_token = await register_car(organizer, "bench-car")
        async with running_car(server.url, car_token, tmp_path / "car", BenchBackend()) as car:
            assert (await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": race_id})).status_code == 200
            await run_the_race(page, server, race_id)
            await until(lambda: car.controller.armed)
            await time_it(page)
            assert not car.controller.armed  # DNF stopped the car
    finally:
        await ann.aclose()
        await organizer.aclose()


async def run_the_race(page: Page, server: LiveServer, race_id: int) -> None:
    await page.goto(f"{server.url}/races/{race_id}/live")
    panel = page.get_by_role("region", name="Race organizer control panel")
    track = panel.get_by_role("region", name="Physical track")
    await expect(track).to_contain_text("runs on the physical track with bench-car (online)")
    # the picture is the car's camera: the simulator's camera views are not offered
    await expect(page.get_by_text("On the physical track the picture is bench-car's own camera.")).to_be_visible()
    await expect(page.get_by_label("Camera view")).to_have_count(0)
    await panel.get_by_role("button", name="Launch simulator").click()
    await expect(panel.locator("[data-simulator]")).to_have_attribute("data-simulator", "running", timeout=60_000)
    await panel.get_by_role("switch", name="Model entries open").uncheck()
    await panel.get_by_role("button", name="Launch ann").click()
    await expect(panel.get_by_role("status").filter(has_text="ann is racing")).to_be_visible(timeout=60_000)
    await track.get_by_role("link", name="Timekeeper panel").click()
    await expect(page.get_by_role("heading", name="Timekeeper panel: Friday night LIVE")).to_be_visible()


async def time_it(page: Page) -> None:
    timing = page.get_by_role("region", name="Timing")
    board = page.get_by_role("region", name="LEADERBOARD")
    await expect(timing.get_by_role("status").filter(has_text="ann is on track")).to_be_visible(timeout=15_000)
    await expect(board).to_contain_text("No entries")

    await timing.get_by_role("button", name="Lap", exact=True).click()
    await expect(timing.locator('[data-fact="laps"]')).to_have_text("1")
    await expect(board.get_by_role("row").filter(has_text="ann")).to_be_visible()
    first = await board.get_by_role("row").filter(has_text="ann").locator("td.time").first.inner_text()
    assert first != "--:--.---"

    await timing.get_by_role("button", name="Off-track +1").click()
    await expect(timing.locator('[data-fact="off-track"]')).to_have_text("1")
    await timing.get_by_role("button", name="Off-track −1").click()
    await expect(timing.locator('[data-fact="off-track"]')).to_have_text("0")

    # A false lap (a hand on the button) is taken back; the board keeps the first lap.
    await timing.get_by_role("button", name="Lap", exact=True).click()
    await expect(timing.locator('[data-fact="laps"]')).to_have_text("2")
    await timing.get_by_role("button", name="Undo last lap").click()
    await expect(timing.locator('[data-fact="laps"]')).to_have_text("1")
    await expect(timing.get_by_role("list", name="Timekeeper log")).to_contain_text("Lap 2 taken back")
    await expect(board.get_by_role("row").filter(has_text="ann").locator("td.time").first).to_have_text(first)

    await timing.get_by_role("button", name="Pause").click()
    await expect(timing.get_by_role("status").filter(has_text="Paused")).to_be_visible()
    await expect(timing.get_by_role("button", name="Lap", exact=True)).to_be_disabled()
    await screenshot(page, "33-timekeeper-paused")
    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, "35-timekeeper-paused-phone")
    await page.set_viewport_size({"width": 1440, "height": 1000})
    await timing.get_by_role("button", name="Resume").click()
    await expect(timing.get_by_role("button", name="Lap", exact=True)).to_be_enabled()

    await timing.get_by_role("button", name="DNF").click()
    await timing.get_by_role("button", name="DNF: end the run").click()
    await expect(timing.get_by_role("status").filter(has_text="No run on track.")).to_be_visible()
    await expect(board.get_by_role("row").filter(has_text="ann")).to_be_visible()
    await screenshot(page, "34-timekeeper-after-dnf")
