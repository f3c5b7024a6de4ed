"""A real server without job workers (the attacks here need none) on a free loopback port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from race_server.settings import Settings
from tests.conftest import LiveServer


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    live = LiveServer(replace(settings, run_workers=False), bus_prefix=f"test-{uuid.uuid4().hex[:8]}:")
    await live.start()
    try:
        yield live
    finally:
        await live.stop()
