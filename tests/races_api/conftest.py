"""A real server whose LIVE simulators run as fast as they can (RaceHost realtime=False)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from race_server.api.race_runtime import RaceOptions
from race_server.settings import Settings
from tests.conftest import LiveServer


@pytest.fixture
async def race_server(settings: Settings) -> AsyncIterator[LiveServer]:
    server = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    server.app.state.race_options = RaceOptions(realtime=False, countdown_s=3, evaluation_max_s=240.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
