"""A race on a physical track is filmed by its car: the broadcast shows the car's camera under the
overlay, says so when the camera is not coming, and replays the car's own frames after the flag."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import av
import numpy as np
import pytest

from race_server.overlay.car_camera import GROUND, STALE_S, CarCamera
from race_server.overlay.compose import REPLAY_RED, Overlay
from race_server.sim.tracks import load_track
from race_server.stream.encoder import FLAG_HOLD_S, EncoderConfig
from race_server.stream.race_stream import RaceStream, ViewerTrack
from tests.stream.test_replay import count

CONFIG = EncoderConfig(
    race_id=1, route_id="reinvent_base", n_sectors=1, width=640, height=360, fps=15, bitrate=800_000, gop=15,
    source="car",
)  # fmt: skip
DARK, LIGHT = 60, 200


def camera_image(value: int) -> np.ndarray:
    image = np.full((120, 160), value, np.uint8)
    image[:, :8] = 255 - value  # a left edge, to see where the image lands
    return image


def test_the_cars_image_fills_the_picture_by_whole_pixels() -> None:
    picture = CarCamera(1280, 720).draw(camera_image(DARK), 0.1)
    assert picture.shape == (720, 1280, 4)
    # 160 x 120 scaled six times: 960 x 720, centred between dark bands
    assert (picture[:, 160:1120, :3] == DARK).sum() > 0.9 * 3 * 720 * 952
    assert (picture[:, 160:208, 0] == 255 - DARK).all() and (picture[:, 208, 0] == DARK).all()
    assert (picture[:, :160, :3] == GROUND).all() and (picture[:, 1120:, :3] == GROUND).all()


def test_no_image_or_a_stale_one_shows_the_waiting_card() -> None:
    camera = CarCamera(640, 360)
    for grey, age in ((None, None), (camera_image(DARK), STALE_S + 0.5)):
        picture = camera.draw(grey, age)
        assert (picture[..., :3] == DARK).all(axis=-1).sum() == 0  # the old image is not frozen on screen
        assert (picture[..., :3] > 150).any(axis=-1).sum() > 500  # the caption is written


def test_a_camera_larger_than_the_picture_is_thinned_to_fit() -> None:
    picture = CarCamera(320, 180).draw(np.full((480, 640), LIGHT, np.uint8), 0.0)
    assert picture.shape == (180, 320, 4)
    assert (picture[..., 0] == LIGHT).sum() == 160 * 214  # every third pixel of 640 x 480: 214 x 160


def centre_level(image: np.ndarray) -> float:
    h, w = image.shape[:2]
    return float(np.median(image[h // 2 - 10 : h // 2 + 10, w // 2 - 10 : w // 2 + 10]))


async def test_the_broadcast_shows_the_cars_camera_and_replays_it() -> None:
    layout = Overlay(load_track("reinvent_base", n_sectors=1), CONFIG.width, CONFIG.height)
    stream = RaceStream(CONFIG)
    await stream.start()
    viewer = ViewerTrack(stream)
    stream.attach(viewer)
    seen: list[tuple[bool, float]] = []  # per decoded frame: (REPLAY badge shown, the picture's centre level)
    decoded = asyncio.Event()

    async def watch() -> None:
        decoder = av.CodecContext.create("libvpx", "r")
        while True:
            for frame in decoder.decode(await viewer.recv()):
                image = frame.to_ndarray(format="rgb24")
                replay = count(image, layout.badge, REPLAY_RED, 40) > layout.badge.w * layout.badge.h // 3
                seen.append((replay, centre_level(image)))
                decoded.set()

    async def until(done: Callable[[], bool], limit_s: float) -> None:
        async with asyncio.timeout(limit_s):
            while not done():
                decoded.clear()
                await decoded.wait()

    watching = asyncio.create_task(watch())
    try:
        stream.apply({"type": "run_started", "racer_id": 1, "run_id": 1, "slot_s": 3.0})
        # the car drives 3 s, its camera at 15 fps: dark for the first half, light for the second
        for step in range(45):
            stream.apply({"type": "telemetry", "racer_id": 1, "run_id": 1, "t": step / 15, "speed": 1.0,
                          "lap": 1, "lap_time_ms": step * 66, "time_remaining_ms": 3000 - step * 66})  # fmt: skip
            stream.show_camera(camera_image(DARK if step < 22 else LIGHT))
            await asyncio.sleep(1 / 15)  # the camera's own frame clock
        assert stream.camera_frames == 45 and stream.camera_dropped == 0
        shown = len(seen)
        await until(lambda: len(seen) >= shown + 3, 5.0)
        live = [level for _, level in seen[shown:]]
        assert all(abs(level - LIGHT) < 25 for level in live), live  # the newest image stays on air
        levels = [level for _, level in seen[:shown]]
        assert any(abs(level - DARK) < 25 for level in levels), levels  # and the dark half was shown live
        stream.apply({"type": "run_end", "racer_id": 1, "run_id": 1, "reason": "time_up", "t": 3.0})
        stream.apply({"type": "checkered", "racer_id": 1, "run_id": 1, "replay_s": FLAG_HOLD_S + 2.0})
        before = len(seen)
        await until(lambda: any(r for r, _ in seen[before:]) and not seen[-1][0], 20.0)
        replayed = [level for replay, level in seen[before:] if replay]
        # the run's last two seconds again, from the car's own frames: dark, then light
        first_light = next(i for i, level in enumerate(replayed) if abs(level - LIGHT) < 25)
        assert first_light > 2 and all(abs(level - DARK) < 25 for level in replayed[: first_light - 1]), replayed
        assert all(abs(level - LIGHT) < 25 for level in replayed[first_light + 1 :]), replayed
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        viewer.stop()
        await stream.close()


async def test_a_simulator_race_takes_no_camera_images() -> None:
    stream = RaceStream(EncoderConfig(race_id=2, route_id="reinvent_base", width=320, height=180))
    await stream.start()
    try:
        stream.show_camera(camera_image(DARK))
        assert stream.camera_frames == 0
        with pytest.raises(ValueError, match="view"):
            stream.set_view("bird")
    finally:
        await stream.close()
