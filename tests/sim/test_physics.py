"""The MuJoCo car behaves like a car with tyres, motors and a servo, not a kinematic model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from race_server.sim.car import CarSpec, ObjectSlot
from race_server.sim.episode import EpisodeConfig, Simulation
from race_server.sim.pursuit import pure_pursuit
from race_server.sim.world import World

G = 9.81


def test_speed_reaches_command_with_finite_acceleration() -> None:
    world = World()
    world.reset(0.0, 0.0, 0.0)
    world.step(0.0, 2.0)
    assert 0.05 < world.speed < 1.0  # one step (1/15 s) is not enough to reach 2 m/s
    for _ in range(14):
        world.step(0.0, 2.0)
    assert world.speed == pytest.approx(2.0, abs=0.06)  # within a second
    assert abs(world.y) < 1e-3 and abs(world.yaw) < 1e-3  # straight line
    world.step(0.0, 0.0)
    assert world.speed > 1.0  # braking is finite too


def test_steering_reaches_command_at_a_finite_rate() -> None:
    world = World()
    world.reset(0.0, 0.0, 0.0)
    world.step(30.0, 0.5)
    first = world.steering_angle
    assert 1.0 < first < 25.0
    for _ in range(4):
        world.step(30.0, 0.5)
    assert world.steering_angle == pytest.approx(30.0, abs=1.0)
    world.step(-30.0, 0.5)
    assert world.steering_angle > -25.0


def _circle(speed: float, steering: float = 30.0) -> tuple[float, float, float]:
    """Drive straight up to speed, then hold the steering; (yaw rate, lateral accel, slip speed)."""
    world = World()
    world.reset(0.0, 0.0, 0.0)
    for _ in range(30):
        world.step(0.0, speed)
    for _ in range(30):
        world.step(steering, speed)
    yaw_rates, lat = [], []
    for _ in range(15):
        world.step(steering, speed)
        yaw_rates.append(world.yaw_rate)
        lat.append(abs(world.lateral_speed))
    yaw_rate = float(np.mean(yaw_rates))
    return yaw_rate, abs(world.speed * yaw_rate), float(np.mean(lat))


def test_cornering_too_fast_breaks_grip() -> None:
    spec = CarSpec()
    slow_rate, slow_acc, _ = _circle(0.5)
    fast_rate, fast_acc, fast_slip = _circle(4.0)
    kinematic_slow = 0.5 * math.tan(math.radians(30.0)) / spec.wheelbase
    kinematic_fast = 4.0 * math.tan(math.radians(30.0)) / spec.wheelbase
    # slow: turns close to the kinematic rate (some scrub: all four wheels share one speed command)
    assert slow_rate > 0.6 * kinematic_slow
    # fast: a kinematic model would turn at 14 rad/s (56 m/s^2); the tyres give up near mu*g
    assert fast_rate < 0.4 * kinematic_fast
    assert fast_acc < 1.3 * spec.tyre_friction * G
    assert fast_acc > slow_acc
    assert fast_slip > 0.05 or fast_rate < 0.3 * kinematic_fast


def _lap(speed: float) -> tuple[str, int]:
    sim = Simulation("reinvent_base", episode=EpisodeConfig())
    sim.reset()
    off_wheels = 0
    while True:
        world = sim.world
        assert world is not None
        out = sim.step(*pure_pursuit(sim.track, world.x, world.y, world.yaw, speed))
        off_wheels += not out.params["all_wheels_on_track"]
        if out.terminated or out.truncated:
            return out.status, off_wheels


def test_same_line_holds_slow_and_leaves_the_track_fast() -> None:
    status, off_wheels = _lap(1.0)
    assert status == "lap_complete" and off_wheels == 0
    fast_status, _ = _lap(4.0)
    assert fast_status == "off_track"


def test_driving_into_a_box_stops_the_car_by_contact() -> None:
    box = ObjectSlot(0.24, 0.39, 0.27)
    world = World(objects=(box,))
    world.reset(0.0, 0.0, 0.0)

    class _Box:
        x, y, yaw = 1.0, 0.0, 0.0
        length, width, height = box.length, box.width, box.height

    world.set_objects([_Box()])
    touched = False
    for _ in range(45):
        world.step(0.0, 1.5)
        touched = touched or bool(world.touching_objects())
    face = 1.0 - box.length / 2.0
    assert touched
    assert world.x + CarSpec().length / 2.0 < face + 0.02  # no tunnelling through the box
    assert abs(world.speed) < 0.1  # wheels still spin at the command; the box holds the car


def test_speed_between_substeps_reaches_the_wheels_within_the_step() -> None:
    """The LIVE host's speed control: a change asked for mid-step acts from that sub-step on."""
    plain, hooked, changed = World(), World(), World()
    for world in (plain, hooked, changed):
        world.reset(0.0, 0.0, 0.0)
        for _ in range(15):
            world.step(0.0, 1.0)
    asked: list[int] = []

    def same(substep: int) -> float:
        asked.append(substep)
        return 1.0

    plain.step(0.0, 1.0)
    hooked.step(0.0, 1.0, same)
    assert asked == list(range(1, hooked.substeps))
    assert hooked.pose() == plain.pose() and hooked.speed == plain.speed  # bit-identical when unchanged
    changed.step(0.0, 1.0, lambda substep: 1.0 if substep < hooked.substeps // 2 else 3.0)
    assert changed.speed > plain.speed + 0.05  # the faster command already pulled within this step
