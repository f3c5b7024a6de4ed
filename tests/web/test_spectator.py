"""A race's viewer link (what `make run` prints for the demo LIVE race) opens the LIVE page in a
browser that is not signed in: the race, its leaderboard and COMING UP, no controls."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import login, make_user
from tests.web.conftest import screenshot
from tests.web.helpers import live_race

pytestmark = pytest.mark.browser


async def test_viewer_link_opens_the_live_page(live_server: LiveServer, settings: Settings, new_context: Any) -> None:
    await make_user(settings, "organizer", "org@example.com")
    async with login(live_server, "org@example.com") as organizer:
        race_id = (await organizer.post("/api/races", json=live_race())).json()["id"]
        viewer = (await organizer.post(f"/api/races/{race_id}/viewer-token")).json()["token"]
    context = await new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(f"{live_server.url}/?race={race_id}&viewer={viewer}")
    await expect(page.get_by_role("heading", name="LIVE: Friday night LIVE")).to_be_visible()
    await expect(page.get_by_text("Welcome to Friday night LIVE!")).to_be_visible()
    await expect(page.get_by_role("region", name="LEADERBOARD")).to_be_visible()
    await expect(page.get_by_role("region", name="Coming up")).to_be_visible()
    await expect(page.get_by_role("region", name="Race organizer control panel")).to_have_count(0)
    await expect(page.get_by_role("region", name="Speed control")).to_have_count(0)
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    await screenshot(page, "08-live-viewer-link")

    await page.goto(f"{live_server.url}/?race={race_id}&viewer=tsv_not-the-token")
    await expect(page.get_by_role("alert")).to_contain_text("viewer link is not valid")
