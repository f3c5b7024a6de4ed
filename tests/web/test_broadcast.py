"""Broadcast mode for OBS: 1920×1080, transparent by default, a key colour with ?chroma=1, every
scene by URL, no sign-in (viewer token), no cursor or scrollbars, and it reconnects by itself after
a server restart, resuming the event stream from its last event id."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Page, WebSocket, expect

from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import PASSWORD, make_user
from tests.races_api.helpers import cookie_of, login, race_socket
from tests.web.conftest import screenshot
from tests.web.helpers import expect_race_video, live_race, serves_video

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENES = ("race", "race-1up", "race-2up", "leaderboard", "intro")


class FixedPortServer(LiveServer):
    """A LiveServer that can be restarted on the same port (as after a real server restart)."""

    def __init__(self, settings: Settings, bus_prefix: str, port: int = 0) -> None:
        super().__init__(settings, bus_prefix)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=port, log_config=None, ws="websockets-sansio", lifespan="on"
            )
        )


async def style(page: Page, expression: str) -> Any:
    return await page.evaluate(expression)


async def test_broadcast_scenes_and_reconnect(settings: Settings, new_context: Any) -> None:
    settings = replace(settings, run_workers=False)
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    server = FixedPortServer(settings, prefix)
    await server.start()
    port = server.port
    try:
        await make_user(settings, "organizer", "org@example.com", alias="org")
        organizer = await login(server, "org@example.com")
        race = (await organizer.post("/api/races", json=live_race())).json()
        race_id = race["id"]
        viewer = (await organizer.post(f"/api/races/{race_id}/viewer-token")).json()["token"]
        joined = await httpx.AsyncClient(base_url=server.url).post(
            f"/api/join/{race['invite_code']}",
            json={"email": "cy@example.com", "password": PASSWORD, "alias": "cyd"},
        )
        assert joined.status_code == 201
        cy_cookie = joined.cookies
        async with httpx.AsyncClient(base_url=server.url, cookies=cy_cookie) as cy:
            entered = await cy.post(f"/api/races/{race_id}/submissions", json={"driver": "reference"})
            assert entered.status_code == 201, entered.text

        context = await new_context(viewport={"width": 1920, "height": 1080})
        base = f"{server.url}/broadcast/{race_id}?viewer={viewer}"
        page = await context.new_page()
        for scene in SCENES:
            for chroma in (False, True):
                await page.goto(f"{base}&scene={scene}" + ("&chroma=1" if chroma else ""))
                await expect(page.locator("body")).to_have_attribute("data-connection", "live")
                size = await style(
                    page, "[document.body.scrollWidth, document.body.scrollHeight, innerWidth, innerHeight]"
                )
                assert size == [1920, 1080, 1920, 1080], (scene, size)
                # OBS sees through wherever the page draws nothing: both root boxes are transparent.
                backgrounds = await style(
                    page, "[document.documentElement, document.body].map(e => getComputedStyle(e).backgroundColor)"
                )
                expected = "rgb(0, 255, 0)" if chroma else "rgba(0, 0, 0, 0)"
                assert backgrounds == [expected, expected], (scene, backgrounds)
                assert await style(page, "getComputedStyle(document.body).cursor") == "none"
                assert await style(page, "getComputedStyle(document.body).overflow") == "hidden"
                if not chroma:
                    await screenshot(page, f"20-broadcast-{scene}", full_page=False)
            if scene == "race" and not serves_video(server):
                # No simulator runs in this test, so only the no-video build has a state to assert here;
                # the LIVE flow test checks playing video during a run.
                await expect_race_video(page, server)
            if scene == "race-1up":
                await expect(page.get_by_label("Commentator 1 frame")).to_be_visible()
                await expect(page.get_by_label("Commentator 2 frame")).to_have_count(0)
            if scene == "race-2up":
                await expect(page.get_by_label("Commentator 2 frame")).to_be_visible()
            if scene == "leaderboard":
                await expect(page.get_by_role("region", name="LEADERBOARD")).to_be_visible()
            if scene == "intro":
                await expect(page.get_by_role("heading", name="Friday night LIVE")).to_be_visible()

        # Watch the intro scene's websocket frames, then restart the server under it.
        sent: list[dict[str, Any]] = []

        def on_socket(ws: WebSocket) -> None:
            ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

        page.on("websocket", on_socket)
        await page.goto(f"{base}&scene=intro")
        await expect(page.locator("body")).to_have_attribute("data-connection", "live")
        coming_up = page.get_by_role("region", name="Coming up")
        await expect(coming_up).to_contain_text("built when the organizer closes model entries")
        last_before = int(await page.locator("body").get_attribute("data-last-event-id") or 0)

        await server.stop()
        await expect(page.locator("body")).to_have_attribute("data-connection", "reconnecting")
        server = FixedPortServer(settings, prefix, port=port)
        await server.start()
        # While the page is reconnecting, the organizer closes entries: the queue shows cy.
        organizer = await login(server, "org@example.com")
        async with race_socket(server, race_id, cookie=cookie_of(organizer)) as ws:
            closed = await ws.command("set_entries_open", open=False)
            assert closed["type"] == "ok", (closed.get("code"), closed.get("message"))
        await expect(page.locator("body")).to_have_attribute("data-connection", "live", timeout=20_000)
        await expect(coming_up.get_by_role("listitem")).to_contain_text("cyd", timeout=10_000)
        resumes = [m for m in sent if m.get("type") == "subscribe" and "last_event_id" in m]
        assert resumes and resumes[-1]["last_event_id"] >= last_before, sent
        await screenshot(page, "21-broadcast-intro-after-restart", full_page=False)
    finally:
        await server.stop()
