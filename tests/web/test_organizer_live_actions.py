"""Every other organizer action of the guide's "Run a LIVE race", in Chromium: remove a racer from
the queue and save, reopen and close model entries, Reset simulator during a run (the racer comes
back for Relaunch), Relaunch, Clear leaderboard ranking, Declare winner! refused in plain words on an
empty board, the camera view switch, View broadcast mode and a new broadcast link."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Request, expect

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, make_user
from tests.web.conftest import screenshot
from tests.web.helpers import api_as, live_race, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def join_and_enter(server: LiveServer, code: str, alias: str, speed: float) -> None:
    async with httpx.AsyncClient(base_url=server.url) as racer:
        joined = await racer.post(f"/api/join/{code}", json={"email": f"{alias}@example.com", "password": PASSWORD,
                                                             "alias": alias})  # fmt: skip
        assert joined.status_code == 201, joined.text
        race_id = joined.json()["race_id"]
        entered = await racer.post(f"/api/races/{race_id}/submissions", json={"driver": "reference",
                                                                              "reference_speed": speed})  # fmt: skip
        assert entered.status_code == 201, entered.text


async def test_run_a_live_race_actions(race_day_server: LiveServer, settings: Settings, new_context: Any) -> None:
    server = race_day_server
    await make_user(settings, "organizer", "org@example.com", alias="org")
    context = await new_context(viewport={"width": 1440, "height": 1000})
    org = await sign_in(context, server, "org@example.com")
    race = await api_as(context, "POST", "/api/races", server, live_race(replay_s=2))
    race_id = race["id"]
    await join_and_enter(server, race["invite_code"], "ann", 1.5)
    await join_and_enter(server, race["invite_code"], "bob", 1.2)

    whep_requests: list[str] = []

    def on_request(request: Request) -> None:
        if "/whep" in request.url and request.method == "POST":
            whep_requests.append(request.url)

    org.on("request", on_request)
    await org.goto(f"{server.url}/races/{race_id}/live")
    panel = org.get_by_role("region", name="Race organizer control panel")
    await panel.get_by_role("button", name="Launch simulator").click()
    entries = panel.get_by_role("switch", name="Model entries open")
    queue = panel.get_by_role("list", name="Racer queue")

    # Remove a racer from the queue and save; reopening entries discards the queue, closing rebuilds it.
    await entries.uncheck()
    await expect(queue.get_by_role("listitem")).to_have_count(2)
    await panel.get_by_role("button", name="Edit").click()
    await panel.get_by_role("button", name="Remove bob").click()
    await panel.get_by_role("button", name="Save").click()
    await expect(queue.get_by_role("listitem")).to_have_count(1)
    await entries.check()
    await expect(queue).to_have_count(0)
    await entries.uncheck()
    await expect(queue.get_by_role("listitem")).to_have_count(2)

    # Launch ann, then Reset simulator mid-run: her run fails and she is back on top for Relaunch.
    await expect(panel.locator("[data-simulator]")).to_have_attribute("data-simulator", "running", timeout=120_000)
    await panel.get_by_role("button", name="Launch ann").click()
    await expect(panel.get_by_text("ann is racing")).to_be_visible(timeout=15_000)
    await panel.get_by_role("button", name="Reset simulator").click()
    await panel.get_by_role("button", name="Reset simulator now").click()
    await expect(panel.get_by_role("button", name="Relaunch ann")).to_be_visible()
    await expect(panel.get_by_role("alert")).to_contain_text("ann's run failed")
    await screenshot(org, "17-control-panel-relaunch")
    await expect(panel.locator("[data-simulator]")).to_have_attribute("data-simulator", "running", timeout=120_000)
    await panel.get_by_role("button", name="Relaunch ann").click()
    board = org.get_by_role("region", name="LEADERBOARD")
    await expect(board.get_by_role("row").filter(has_text="ann")).to_be_visible(timeout=60_000)
    await expect(panel.get_by_role("button", name="Launch bob")).to_be_enabled(timeout=60_000)

    # Clear leaderboard ranking empties the board; Declare winner! then says why it cannot.
    await panel.get_by_role("button", name="Clear leaderboard ranking").click()
    await panel.get_by_role("button", name="Clear all entries").click()
    await expect(board.get_by_role("row")).to_have_count(0)
    await expect(board).to_contain_text("No entries")
    await panel.get_by_role("button", name="Declare winner!").click()
    await panel.get_by_role("button", name="Declare winner", exact=True).click()
    await expect(panel.get_by_role("alert")).to_contain_text("Nobody is on the leaderboard yet")

    # Camera view: one picture per race, so the choice goes to the race's encoder. This server runs
    # without video (tests/conftest.py), so the page then says why the switch did not happen.
    async with org.expect_request(lambda r: r.method == "POST" and r.url.endswith("/video/view")) as sent:
        await org.get_by_label("Camera view").select_option("topdown")
    assert (await sent.value).post_data_json == {"view": "topdown"}
    await expect(org.get_by_role("alert").filter(has_text="no live video")).to_be_visible()
    assert whep_requests[0].endswith("/whep")

    # View broadcast mode opens the broadcast page with a viewer token; a new link shuts the old one out.
    async with org.expect_popup() as popup_info:
        await panel.get_by_role("button", name="View broadcast mode").click()
    broadcast = await popup_info.value
    await broadcast.wait_for_url(f"{server.url}/broadcast/{race_id}?viewer=tsv_*&scene=race")
    await expect(broadcast.locator("body")).to_have_attribute("data-connection", "live")
    scene_url = panel.get_by_role("textbox", name="Race view scene URL")
    first_url = await scene_url.input_value()
    assert first_url == broadcast.url
    await panel.get_by_role("button", name="New broadcast link").click()
    await panel.get_by_role("button", name="Create link").click()
    await expect(scene_url).not_to_have_value(first_url)
    await expect(broadcast.locator("body")).to_have_attribute("data-connection", "forbidden")
    await screenshot(org, "18-control-panel-broadcast-links")
