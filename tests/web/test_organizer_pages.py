"""The organizer's pages in Chromium: the create-race wizard with every customisation, the
invitation (copy, suggested email, reset), and every Manage races action of the guide: view
leaderboard, copy/reset invitation link, export participants, edit race details, remove racers,
close race, delete race. Also a racer's sign-up by invitation link, racer name and sign out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, make_user
from tests.web.conftest import screenshot
from tests.web.helpers import api_as, sign_in

pytestmark = pytest.mark.browser


async def test_create_manage_and_join(live_server: LiveServer, settings: Settings, new_context: Any) -> None:
    server = live_server
    await make_user(settings, "organizer", "org@example.com", alias="org")
    organizer = await new_context(
        viewport={"width": 1366, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = await sign_in(organizer, server, "org@example.com")
    await screenshot(page, "01-races-organizer-empty")

    # Create race: LIVE, object avoidance with two placed obstacles, then review and submit.
    await page.get_by_role("link", name="Create race").first.click()
    await page.get_by_role("radio", name="LIVE race").check()
    await page.get_by_role("radio", name="Object avoidance").check()
    await page.get_by_label("Name of the race").fill("Friday night LIVE")
    await page.get_by_label("Start date").fill("2025-01-01T18:00")
    await page.get_by_label("End date").fill("2099-01-01T18:00")
    await page.get_by_label("Competition track").select_option("Bowtie_track")
    await page.get_by_label("Description of race").fill("Meet us at https://meet.example.com/race")
    await page.get_by_label("Time per racer (minutes)").fill("2")
    await page.get_by_label("Off-track penalty (seconds)").fill("5")
    await page.get_by_label("Collision penalty (seconds)").fill("4")
    await page.get_by_label("Number of objects").fill("2")
    await page.get_by_label("Obstacle 2 lane placement").select_option("outside")
    await page.get_by_label("Obstacle 2 location (%) between start and finish").fill("55")
    await screenshot(page, "02-create-race-details")
    await page.get_by_role("button", name="Next").click()
    review = page.get_by_role("region", name="Review race details", exact=True)
    await expect(review).to_contain_text("Object avoidance")
    await expect(review).to_contain_text("Number of obstacles")
    await screenshot(page, "03-create-race-review")
    await page.get_by_role("button", name="Submit").click()

    # The invitation: link, suggested email, reset.
    link_field = page.get_by_role("textbox", name="Invitation link", exact=True)
    await expect(link_field).to_be_visible()
    first_link = await link_field.input_value()
    assert first_link.startswith(f"{server.url}/join/tsr_")
    email = await page.get_by_role("textbox", name="Suggested email").input_value()
    assert "Friday night LIVE" in email and first_link in email
    await screenshot(page, "04-invitation")
    await page.get_by_role("button", name="Copy invitation link").click()
    await expect(page.get_by_text("Copied", exact=True)).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == first_link
    races = await api_as(organizer, "GET", "/api/races", server)
    race = races["races"][0]
    assert race["config"]["object_avoidance"]["obstacles"][1] == {"lane": "outside", "location_pct": 55.0}
    assert race["config"]["collision_penalty_s"] == 4 and race["config"]["time_per_racer_min"] == 2
    await page.get_by_role("button", name="Reset invitation link").click()
    await page.get_by_role("button", name="Reset link").click()
    await expect(link_field).not_to_have_value(first_link)
    link = await link_field.input_value()
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("heading", name="Manage races", exact=True)).to_be_visible()

    # A racer follows the link without an account: signs up there, with a racer name.
    racer = await new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    ann = await racer.new_page()
    await ann.goto(first_link)
    await ann.get_by_label("Email").fill("ann@example.com")
    await ann.get_by_label("Password").fill(PASSWORD)
    await ann.get_by_label("Racer name").fill("ann")
    await ann.get_by_role("button", name="Join race").click()
    await expect(ann.get_by_role("alert")).to_contain_text("not valid")  # the old link was reset
    await ann.goto(link)
    await ann.get_by_label("Email").fill("ann@example.com")
    await ann.get_by_label("Password").fill(PASSWORD)
    await ann.get_by_label("Racer name").fill("ann")
    await ann.get_by_role("button", name="Join race").click()
    await expect(ann.get_by_role("heading", name="Friday night LIVE", exact=True)).to_be_visible()
    await expect(ann.get_by_role("link", name="Calendar")).to_have_attribute(
        "href", f"/api/races/{race['id']}/calendar.ics"
    )
    await screenshot(ann, "05-race-page-racer-phone")
    await ann.get_by_role("link", name="Community races").first.click()
    card = ann.get_by_role("article", name="Friday night LIVE", exact=True)
    await expect(card).to_contain_text("LIVE")
    await expect(card.get_by_role("link", name="Enter race")).to_be_visible()
    await screenshot(ann, "06-race-cards-racer-phone")
    await ann.get_by_role("button", name="Sign out").click()
    await expect(ann.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()

    # A classic head-to-bot race with every bot setting.
    await page.get_by_role("link", name="Create race").first.click()
    await page.get_by_role("radio", name="Classic race").check()
    await page.get_by_role("radio", name="Head-to-bot").check()
    await page.get_by_label("Name of the race").fill("Bot brawl")
    await page.get_by_label("Ranking method").select_option("total_time")
    await page.get_by_label("Minimum laps").fill("2")
    await page.get_by_label("Number of bot cars").fill("4")
    await page.get_by_label("Bot car speed (m/s)").fill("1.5")
    await page.get_by_label("Enable lane change").check()
    await page.get_by_label("Minimum lane change time (seconds)").fill("2")
    await page.get_by_label("Maximum lane change time (seconds)").fill("6")
    await page.get_by_role("button", name="Next").click()
    await expect(page.get_by_role("region", name="Review race details", exact=True)).to_contain_text(
        "Number of bot cars"
    )
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_role("button", name="Done").click()
    bots = [
        r for r in (await api_as(organizer, "GET", "/api/races", server))["races"] if r["config"]["name"] == "Bot brawl"
    ]
    config = bots[0]["config"]
    assert config["format"] == "classic" and config["ranking"] == "total_time" and config["min_consecutive_laps"] == 2
    assert config["head_to_bot"] == {
        "bots": 4, "speed_mps": 1.5, "lane_change": True, "min_lane_change_s": 2.0, "max_lane_change_s": 6.0
    }  # fmt: skip

    # Manage races: choose the race; its racers; every action.
    await page.reload()
    await page.get_by_label("Choose Friday night LIVE").check()
    managed = page.get_by_role("region", name="Friday night LIVE", exact=True)
    await expect(managed.get_by_role("cell", name="ann", exact=True)).to_be_visible()
    await screenshot(page, "07-manage-races")
    async with page.expect_download() as download_info:
        await managed.get_by_role("link", name="Export race participants to CSV").click()
    download = await download_info.value
    csv_text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    assert "ann@example.com" in csv_text

    await managed.get_by_role("link", name="Edit race details").click()
    await expect(page.get_by_label("Name of the race")).to_have_value("Friday night LIVE")
    await page.get_by_label("Name of the race").fill("Friday night LIVE II")
    await page.get_by_role("button", name="Next").click()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("cell", name="Friday night LIVE II", exact=True)).to_be_visible()
    managed = page.get_by_role("region", name="Friday night LIVE II", exact=True)

    await managed.get_by_label("Select ann").check()
    await managed.get_by_role("button", name="Remove participants").click()
    await managed.get_by_role("button", name="Remove", exact=True).click()
    await expect(managed.get_by_text("Nobody has joined yet")).to_be_visible()

    await managed.get_by_role("link", name="View leaderboard").click()
    await expect(page.get_by_role("region", name="Friday night LIVE II leaderboard", exact=True)).to_be_visible()
    await page.go_back()
    managed = page.get_by_role("region", name="Friday night LIVE II", exact=True)
    await managed.get_by_role("button", name="Close race").click()
    await managed.get_by_role("button", name="Close race now").click()
    await expect(page.get_by_role("row", name="Friday night LIVE II")).to_contain_text("Closed")
    await managed.get_by_role("button", name="Delete race").click()
    await managed.get_by_role("button", name="Delete race forever").click()
    await expect(page.get_by_role("cell", name="Friday night LIVE II", exact=True)).to_have_count(0)
    left = (await api_as(organizer, "GET", "/api/races", server))["races"]
    assert [r["config"]["name"] for r in left] == ["Bot brawl"]


async def test_sign_in_errors_are_plain_words(live_server: LiveServer, settings: Settings, new_context: Any) -> None:
    await make_user(settings, "racer", "bob@example.com")
    context = await new_context()
    page = await context.new_page()
    await page.goto(f"{live_server.url}/")
    for _ in range(3):
        await page.get_by_label("Email").fill("bob@example.com")
        await page.get_by_label("Password").fill("wrong password!")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("signing in is paused: try again in a minute")
    await screenshot(page, "00-sign-in-rate-limited")


async def test_racer_chooses_a_fixed_racer_name(live_server: LiveServer, settings: Settings, new_context: Any) -> None:
    await make_user(settings, "racer", "dee@example.com")  # an account without a racer name yet
    context = await new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await page.goto(f"{live_server.url}/")
    await page.get_by_label("Email").fill("dee@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Choose your racer name")).to_be_visible()
    await page.get_by_role("textbox", name="Racer name").fill("x")
    await page.get_by_role("button", name="Save racer name").click()
    await expect(page.get_by_role("alert")).to_contain_text("Alias must be 3-32 letters")
    await page.get_by_role("textbox", name="Racer name").fill("dee_racer")
    await page.get_by_role("button", name="Save racer name").click()
    await expect(page.get_by_role("heading", name="Welcome to Trackside community races, dee_racer!")).to_be_visible()
    await page.goto(f"{live_server.url}/alias")
    await expect(page.get_by_text("It is fixed once chosen")).to_be_visible()
