"""Headless Chromium watches a LIVE race over WHEP: 1280 pixels wide, frames advancing, live."""

from __future__ import annotations

import os

import pytest
from playwright.async_api import async_playwright

from race_server.settings import Settings
from race_server.stream.browser import CHROMIUM, CHROMIUM_ARGS, probe_script
from tests.conftest import artifact_path
from tests.stream.live_race import live_race, video_server


@pytest.mark.browser
@pytest.mark.slow
async def test_chromium_receives_live_race_video_over_whep(settings: Settings) -> None:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (a stat, once)
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    async with (
        video_server(settings, slot_s=20.0) as server,
        live_race(server, settings) as race,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # This page is the JSON API with a probe injected: its strict CSP (no eval) would stop
            # Playwright's wait_for_function, and what is tested here is the video, not the policy.
            context = await browser.new_context(bypass_csp=True)
            page = await context.new_page()
            await page.goto(f"{server.url}/api/races/{race.race_id}?viewer={race.viewer_token}")
            await race.launch()
            url = f"{server.url}/api/races/{race.race_id}/whep"
            error = await page.evaluate(probe_script(), {"url": url, "token": race.viewer_token})
            assert error is None, error
            await page.wait_for_function("window.__video.frames.length > 0", timeout=30_000)
            first = await page.evaluate("window.__video.frames.at(-1).presented")
            await page.wait_for_function(f"window.__video.frames.at(-1).presented > {first} + 30", timeout=30_000)
            frames = await page.evaluate("window.__video.frames")
            assert {f["width"] for f in frames} == {1280} and {f["height"] for f in frames} == {720}
            ages = [f["age"] for f in frames if f["age"] is not None]
            assert len(ages) > 0.9 * len(frames)  # the page reads the capture time of nearly every frame
            assert sorted(ages)[len(ages) // 2] < 1000  # live, not a backlog
            await page.locator("video").screenshot(path=str(artifact_path("browser_live_video.png")))
            await page.evaluate("window.__video.close()")
            # the page's DELETE answered only once the session was released
            assert not server.app.state.video.hub.sessions
        finally:
            await browser.close()
