"""Browser-test helpers: sign in through the page, and a race made over the API."""

from __future__ import annotations

from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.conftest import LiveServer
from tests.helpers import PASSWORD

TRACK = "Bowtie_track"


async def sign_in(context: BrowserContext, server: LiveServer, email: str, next_path: str = "/") -> Page:
    page = await context.new_page()
    await page.goto(f"{server.url}/signin?next={next_path}")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


async def api_as(context: BrowserContext, method: str, path: str, server: LiveServer, data: Any = None) -> Any:
    """An API call with the context's session cookie (what the page itself would send)."""
    response = await context.request.fetch(f"{server.url}{path}", method=method, data=data)
    assert response.ok, await response.text()
    return await response.json()


def live_race(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Friday night LIVE", "format": "live", "track_id": TRACK,
        "start": "2020-01-01T18:00:00+00:00", "end": "2099-01-01T18:00:00+00:00",
        "time_per_racer_min": 1, "replay_s": 3, **changes,
    }  # fmt: skip


def serves_video(server: LiveServer) -> bool:
    """Whether this server streams race video (tests turn it off where they do not watch it)."""
    return bool(server.app.state.settings.video.enabled)


async def expect_race_video(page: Page, server: LiveServer) -> None:
    """Video playing (frames decoded) where the server streams it, else the clear unavailable state."""
    state = page.locator("[data-video-state]").first
    if serves_video(server):
        await expect(state).to_have_attribute("data-video-state", "playing", timeout=30_000)
        await expect(state).to_have_attribute("data-video-width", "1280", timeout=30_000)  # frames decoded
    else:
        await expect(state).to_have_attribute("data-video-state", "unavailable", timeout=15_000)
        await expect(state).to_contain_text("Video unavailable")
