"""The car's camera reaches the server over WebRTC (real aiortc peers on loopback), when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from race_server.api.car_ws import car_video
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.fleet.helpers import BenchBackend, register_car, running_car, until
from tests.helpers import login, make_user


@pytest.fixture
async def organizer(live_server: LiveServer, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await make_user(settings, "organizer", "org@example.com")
    async with login(live_server, "org@example.com") as client:
        yield client


async def test_the_cars_camera_is_received_frame_by_frame(
    live_server: LiveServer, organizer: httpx.AsyncClient, tmp_path: Path
) -> None:
    car_id, token = await register_car(organizer)
    backend = BenchBackend()  # a flat grey 80 picture
    async with running_car(live_server.url, token, tmp_path / "car", backend, video=True):
        video = car_video(live_server.app.state)
        await until(lambda: car_id in video.feeds and video.feeds[car_id].frames >= 10, timeout=30)
        latest = video.latest(car_id)
        assert latest is not None
        frame, _ = latest
        assert frame.shape == (120, 160) and abs(float(frame.mean()) - 80) < 8  # VP8 is lossy, not wrong
    await until(lambda: car_id not in video.feeds, timeout=10)  # the car went: its peer is released


async def test_video_needs_a_linked_car_and_an_sdp_offer(live_server: LiveServer, organizer: httpx.AsyncClient) -> None:
    _, token = await register_car(organizer)
    async with httpx.AsyncClient(base_url=live_server.url, headers={"authorization": f"Bearer {token}"}) as car:
        offline = await car.post("/api/car/video", content=b"v=0", headers={"content-type": "application/sdp"})
        assert offline.status_code == 409 and offline.json()["code"] == "not_linked"
    assert (await organizer.post("/api/car/video", content=b"v=0")).status_code == 403
