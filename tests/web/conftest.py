"""Browser tests: Debian's Chromium driven by Playwright against a real server (real PostgreSQL,
the real RaceHost). Every page must run without a script error or a Content-Security-Policy
violation; a test fails on either. Screenshots go to test-artifacts/screenshots/ for review."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from race_server.stream.settings import VideoSettings
from tests.conftest import IN_CI, LiveServer, artifact_path

CHROMIUM = os.environ.get("TRACKSIDE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
COUNTDOWN_S = 3
SLOT_S = 25.0


def _chromium_missing() -> bool:
    return shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if _chromium_missing():
        message = f"Chromium is not installed at {CHROMIUM} (make test installs it: apt-get install chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class PageProblems:
    """Script errors and CSP violations seen on any page of a context."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}\n{error.stack}"))

        def console(message: ConsoleMessage) -> None:
            text = message.text
            if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
                self.errors.append(f"{page.url}: {text}")

        page.on("console", console)


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
async def new_context(browser: Browser, problems: PageProblems) -> AsyncIterator[object]:
    contexts: list[BrowserContext] = []

    async def make(**options: object) -> BrowserContext:
        context = await browser.new_context(**options)  # type: ignore[arg-type]
        context.on("page", problems.watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()
    assert not problems.errors, problems.errors


@pytest.fixture
async def race_day_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """A server whose LIVE simulator runs in real time with a short countdown and slot."""
    async with _race_day(settings) as server:
        yield server


@pytest.fixture
async def race_day_video_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The same, streaming each LIVE race's video (one encoder per launched simulator)."""
    async with _race_day(replace(settings, video=VideoSettings())) as server:
        yield server


@asynccontextmanager
async def _race_day(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=True, countdown_s=COUNTDOWN_S, time_per_racer_s=SLOT_S)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    await page.screenshot(path=str(artifact_path(f"screenshots/{name}.png")), full_page=full_page)
