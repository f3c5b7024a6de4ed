"""A LIVE race on the physical track is filmed by its car: the car's camera, published over WebRTC,
is the race's broadcast picture (with the overlay), seen by a WHEP viewer; the simulator's camera
views cannot be chosen for it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from PIL import Image

from race_server.settings import Settings
from tests.conftest import artifact_path
from tests.fleet.helpers import BenchBackend, register_car, running_car, until
from tests.races_api.helpers import cookie_of, live_config, login, make_user, race_socket
from tests.stream.live_race import video_server
from tests.stream.viewers import connect

SDP = {"content-type": "application/sdp"}
BENCH_GREY = 80  # BenchBackend's camera: a flat grey picture


async def test_the_broadcast_of_a_physical_race_is_its_cars_camera(settings: Settings, tmp_path: Path) -> None:
    async with video_server(settings, slot_s=30.0) as server:
        await make_user(settings, "organizer", "org@example.com")
        organizer = await login(server, "org@example.com")
        try:
            race_id = (await organizer.post("/api/races", json=live_config())).json()["id"]
            car_id, token = await register_car(organizer, "camera-car")
            async with (
                running_car(server.url, token, tmp_path / "car", BenchBackend(), video=True),
                race_socket(server, race_id, cookie=cookie_of(organizer)) as org_ws,
            ):
                assigned = await organizer.put(f"/api/fleet/{car_id}/race", json={"race_id": race_id})
                assert assigned.status_code == 200, assigned.text
                assert (await org_ws.command("subscribe"))["type"] == "ok"
                await org_ws.wait_type("snapshot")
                assert (await org_ws.command("launch_simulator"))["type"] == "ok"
                await org_ws.wait_type("simulator", status="running", timeout=60)
                stream = server.app.state.video.stream_for(race_id)
                assert stream is not None and stream.config.source == "car"
                await until(lambda: stream.camera_frames >= 10, timeout=30)

                async def answer(offer: str) -> str:
                    response = await organizer.post(f"/api/races/{race_id}/whep", content=offer, headers=SDP)
                    assert response.status_code == 201, response.text
                    return response.text

                peer = await connect(answer)
                try:
                    assert peer.track is not None
                    for _ in range(10):
                        frame = await asyncio.wait_for(peer.track.recv(), 30)
                    image = frame.to_ndarray(format="rgb24")  # type: ignore[union-attr]
                    Image.fromarray(image).save(artifact_path("broadcast_car.png"))
                    h, w = image.shape[:2]
                    centre = image[h // 2 - 20 : h // 2 + 20, w // 2 - 20 : w // 2 + 20]
                    # the car's picture, twice VP8-encoded (car, then broadcast): lossy, not another image
                    assert (w, h) == (1280, 720) and abs(float(np.median(centre)) - BENCH_GREY) < 10
                finally:
                    await peer.close()
                view = await organizer.post(f"/api/races/{race_id}/video/view", json={"view": "tv"})
                assert view.status_code == 409 and view.json()["code"] == "physical_track"
        finally:
            await organizer.aclose()
