"""The broadcast camera: every view draws the track, the car as a car, boxes and bots; smooth motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from race_server.sim.broadcast import VIEWS, BroadcastRenderer, Pose, PoseInterpolator
from race_server.sim.broadcast_solids import BOT_SHELL, CAR_SHELL, CARDBOARD, SHADE_TOP
from race_server.sim.broadcast_texture import BORDER, CENTRE, ROAD
from race_server.sim.objects import Box
from race_server.sim.tracks import load_track
from tests.conftest import artifact_path


@pytest.fixture(scope="module")
def renderer() -> BroadcastRenderer:
    return BroadcastRenderer(load_track("reinvent_base"))


def scene(renderer: BroadcastRenderer) -> tuple[Pose, list[Box]]:
    track = renderer.track
    car = Pose(*track.pose_at(3.0))
    bx, by, bh = track.pose_at(4.5, 0.15)
    ox, oy, oh = track.pose_at(6.0, -0.15)
    return car, [Box(bx, by, bh, 0.3, 0.3, 0.3), Box(ox, oy, oh, 0.32, 0.2, 0.15, is_bot=True)]


def near(frame: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> np.ndarray:
    close: np.ndarray = np.all(np.abs(frame[..., :3].astype(int) - np.array(rgb)) <= tol, axis=-1)
    return close


def shaded(rgb: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    r, g, b = rgb
    return (round(r * k), round(g * k), round(b * k))


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_draws_track_car_and_objects(renderer: BroadcastRenderer, view: str) -> None:
    car, boxes = scene(renderer)
    frame = renderer.render(view, car, boxes)  # type: ignore[arg-type]
    assert frame.shape == (720, 1280, 4) and frame.dtype == np.uint8
    Image.fromarray(frame[..., :3].copy()).save(artifact_path(f"broadcast_{view}.png"))
    pixels = 1280 * 720
    assert near(frame, ROAD, 16).sum() > pixels * 0.05  # the road
    assert near(frame, BORDER, 10).sum() > 500  # its white borders
    assert near(frame, CENTRE, 14).sum() > 100  # the dashed centre line
    assert near(frame, shaded(CAR_SHELL, SHADE_TOP), 4).sum() > 100  # the car's shell, from above
    assert near(frame, shaded(CARDBOARD, SHADE_TOP), 4).sum() > 50  # the box's top
    if view != "chase":  # the bot is behind the box from the chase camera
        assert near(frame, shaded(BOT_SHELL, SHADE_TOP), 4).sum() > 20


def test_chase_view_turns_with_the_car(renderer: BroadcastRenderer) -> None:
    track = renderer.track
    a = renderer.render("chase", Pose(*track.pose_at(1.0))).copy()
    x, y, yaw = track.pose_at(1.0)
    b = renderer.render("chase", Pose(x, y, yaw + 0.3)).copy()
    shell = shaded(CAR_SHELL, SHADE_TOP)
    # the car stays put on screen (the camera is behind it) while the world swings around
    assert abs(int(near(a, shell, 4).sum()) - int(near(b, shell, 4).sum())) < 200
    assert np.mean(np.any(a != b, axis=-1)) > 0.2


def test_scene_without_car_between_runs(renderer: BroadcastRenderer) -> None:
    frame = renderer.render("tv", None)
    assert near(frame, shaded(CAR_SHELL, SHADE_TOP), 4).sum() == 0


def test_interpolation_smooths_15hz_states() -> None:
    interp = PoseInterpolator(delay_s=1 / 15)
    assert interp.at(0.0) is None
    for k in range(5):
        interp.push(k / 15, Pose(k * 0.1, 0.0, k * 0.2), arrived=100.0 + k / 15)
    # display time 100 + 3/15 maps to sim time 2/15; half a tick later the car is half-way
    mid = interp.at(100.0 + 3 / 15 + 1 / 30)
    assert mid is not None
    assert mid.x == pytest.approx(0.25) and mid.yaw == pytest.approx(0.5)
    # yaw takes the short way across +-pi
    wrap = PoseInterpolator(delay_s=0.0)
    wrap.push(0.0, Pose(0, 0, math.pi - 0.1), 0.0)
    wrap.push(0.1, Pose(0, 0, -math.pi + 0.1), 0.1)
    half = wrap.at(0.05)
    assert half is not None and math.cos(half.yaw) == pytest.approx(-1.0, abs=1e-6)
    # a new run (the clock restarts) forgets the old states
    interp.push(0.0, Pose(9.0, 9.0, 0.0), arrived=200.0)
    restarted = interp.at(200.5)
    assert restarted is not None and restarted.x == 9.0
