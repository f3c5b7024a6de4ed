"""The reward-params dict: every DeepRacer key, the right types, DeepRacer's rules."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from race_server.sim.episode import EpisodeConfig, Simulation
from race_server.sim.objects import CRASH_BOX, CRASH_CAR, ObjectsConfig, rectangle
from race_server.sim.params import (
    PARAM_TYPES,
    ObjectState,
    ProgressTracker,
    closest_objects,
    collided_objects,
    fresh_params,
    in_frustum,
    object_in_camera,
    split_bot_collisions,
)
from race_server.sim.pursuit import pure_pursuit
from tests.sim.driving import steer_along_lane

GUIDE_KEYS = {
    "all_wheels_on_track", "x", "y", "closest_objects", "closest_waypoints", "distance_from_center",
    "is_crashed", "is_left_of_center", "is_offtrack", "is_reversed", "heading", "objects_distance",
    "objects_heading", "objects_left_of_center", "objects_location", "objects_speed", "progress",
    "speed", "steering_angle", "steps", "track_length", "track_width", "waypoints",
}  # fmt: skip


def _check_types(params: dict[str, Any], n_objects: int, n_waypoints: int) -> None:
    assert set(params) >= GUIDE_KEYS
    assert set(params) == set(PARAM_TYPES)
    for key, kind in PARAM_TYPES.items():
        value = params[key]
        assert type(value) is kind, (key, type(value))
    assert len(params["waypoints"]) == n_waypoints
    assert all(type(v) is float for row in params["waypoints"][:3] for v in row)
    assert all(type(i) is int for i in params["closest_waypoints"] + params["closest_objects"])
    assert all(0 <= i < n_waypoints for i in params["closest_waypoints"])
    for key in (
        "objects_location", "objects_left_of_center", "objects_distance",
        "objects_distance_from_center", "objects_heading", "objects_speed",
    ):  # fmt: skip
        assert len(params[key]) == n_objects
    for loc in params["objects_location"]:
        assert len(loc) == 2 and all(type(v) is float for v in loc)
    assert all(type(v) is bool for v in params["objects_left_of_center"])
    for key in ("objects_distance", "objects_distance_from_center", "objects_heading", "objects_speed"):
        assert all(type(v) is float for v in params[key])
    assert -180.0 < params["heading"] <= 180.0
    assert params["progress"] <= 100.0
    if n_objects == 0:
        assert params["closest_objects"] == [0, 0] and params["object_in_camera"] is False
    else:
        assert all(0 <= i < n_objects for i in params["closest_objects"])


@pytest.mark.parametrize(
    "objects",
    [
        ObjectsConfig(),
        ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=3),
        ObjectsConfig(
            race_type="HEAD_TO_BOT",
            number_of_bots=2,
            bot_speed=0.5,
            is_lane_change=True,
            lower_lane_change_time=1.0,
            upper_lane_change_time=2.0,
        ),
    ],
    ids=["time_trial", "obstacles", "bots"],
)
def test_every_key_with_the_right_type_on_every_step(objects: ObjectsConfig) -> None:
    sim = Simulation("reinvent_base", objects=objects, seed=3)
    n_objects = objects.obstacle_count + objects.bot_count
    out = sim.reset()
    n_rows = len(sim.track.waypoints)
    _check_types(out.params, n_objects, n_rows)
    start_progress = 100.0 * 0.14 / sim.track.length  # DeepRacer's start is the car origin
    assert out.params["steps"] == 0.0 and out.params["progress"] == pytest.approx(start_progress, abs=0.02)
    for _ in range(120):
        world = sim.world
        assert world is not None
        out = sim.step(*pure_pursuit(sim.track, world.x, world.y, world.yaw, 1.0))
        _check_types(out.params, n_objects, n_rows)
        if out.terminated or out.truncated:
            out = sim.reset()
            _check_types(out.params, n_objects, n_rows)


def test_values_match_the_car_state() -> None:
    sim = Simulation("reinvent_base")
    sim.reset()
    world = sim.world
    assert world is not None
    for _ in range(20):
        out = sim.step(5.0, 1.0)
    p = out.params
    rx, ry = world.reference_point()
    assert (p["x"], p["y"]) == (rx, ry)
    assert math.hypot(rx - world.x, ry - world.y) == pytest.approx(0.14)
    assert p["heading"] == pytest.approx(math.degrees(world.yaw))
    assert p["speed"] == 1.0 and p["steering_angle"] == 5.0  # the commanded action
    assert p["steps"] == 20
    assert p["sim_time"] == pytest.approx(20 / 15.0)
    assert p["track_length"] == pytest.approx(17.709, abs=0.01)
    assert p["waypoints"][0] == p["waypoints"][-1]  # closing row kept
    pos = sim.track.locate(rx, ry)
    assert p["projection_distance"] == pos.projection_distance
    assert p["progress"] == pytest.approx(100.0 * pos.projection_distance / sim.track.length - sim.progress.start)
    assert p["is_reversed"] is False


def test_progress_wrap_rules() -> None:
    t = ProgressTracker(start_progress=90.0, is_loop=True)
    assert t.update(90.0) == 0.0
    assert t.update(95.0) == pytest.approx(5.0)
    assert t.update(10.0) == pytest.approx(20.0)  # negative relative progress gets +100
    assert t.update(40.0) == pytest.approx(50.0)
    assert t.update(70.0) == pytest.approx(80.0)
    assert t.update(85.0) == pytest.approx(95.0)
    assert t.update(91.0) == 100.0  # crossed the start point: +100, capped
    back = ProgressTracker(start_progress=0.0, is_loop=True)
    back.update(0.5)
    assert back.update(99.0) == pytest.approx(-1.0)  # crossed backwards: -100
    open_track = ProgressTracker(start_progress=10.0, is_loop=False)
    assert open_track.update(5.0) == pytest.approx(-5.0)


def test_crossing_fraction() -> None:
    assert ProgressTracker.crossing_fraction(99.0, 101.0) == pytest.approx(0.5)
    assert ProgressTracker.crossing_fraction(98.0, 102.0) == pytest.approx(0.5)
    assert ProgressTracker.crossing_fraction(99.0, 100.25) == pytest.approx(0.8)


def _obj(distance: float, bot: bool = False) -> ObjectState:
    return ObjectState(0.0, 0.0, distance, 0.1, True, 0.0, 0.0, bot)


def test_closest_objects_behind_and_ahead() -> None:
    objs = [_obj(2.0), _obj(8.0), _obj(15.0)]
    assert closest_objects(5.0, objs, 17.7, True) == [0, 1]
    assert closest_objects(16.0, objs, 17.7, True) == [2, 0]  # wraps past the start line
    assert closest_objects(5.0, [_obj(3.0)], 17.7, True) == [0, 0]
    assert closest_objects(5.0, [], 17.7, True) == [0, 0]


def test_deepracer_crash_is_a_car_corner_inside_the_object_rectangle() -> None:
    """DeepRacer's TrackData.get_collided_object_name: any corner of the car's 0.422 x 0.296 m
    rectangle strictly inside the object's rectangle (box 0.5 x 0.4 m, buffer included)."""
    box = np.stack([rectangle(0.0, 0.0, 0.0, *CRASH_BOX)])
    # car nose 1 cm inside the box's 0.25 m half length: a crash
    assert collided_objects(rectangle(-0.25 - 0.211 + 0.01, 0.0, 0.0, *CRASH_CAR), box) == [0]
    # 1 cm short of it: no crash (the physical box is only 0.241 m long; the buffer counts)
    assert collided_objects(rectangle(-0.25 - 0.211 - 0.01, 0.0, 0.0, *CRASH_CAR), box) == []
    # beside the box, corners 1 cm outside its 0.2 m half width
    assert collided_objects(rectangle(0.0, 0.2 + 0.148 + 0.01, 0.0, *CRASH_CAR), box) == []
    # only the car's corners count: a box corner poking into the car's side is not a crash
    wide_car_side = rectangle(0.0, 0.0, math.pi / 4, *CRASH_CAR)
    small = np.stack([rectangle(0.0, 0.30, 0.0, 0.05, 0.05)])
    assert collided_objects(wide_car_side, small) == []


def test_bot_that_rear_ends_the_car_is_not_the_cars_crash() -> None:
    ahead_of_car = [_obj(5.2, bot=True)]
    behind_car = [_obj(4.8, bot=True)]
    assert split_bot_collisions([0], 5.0, ahead_of_car, 17.7, True) == ([0], [])
    assert split_bot_collisions([0], 5.0, behind_car, 17.7, True) == ([], [0])
    assert split_bot_collisions([0], 5.0, [_obj(4.8, bot=False)], 17.7, True) == ([0], [])


def test_object_in_camera_uses_the_frustum_and_the_object_footprint() -> None:
    rect = rectangle(1.0, 0.0, 0.0, *CRASH_BOX)
    assert object_in_camera(0.0, 0.0, 0.0, rect, (1.0, 0.0), False)
    assert not object_in_camera(0.0, 0.0, math.pi, rect, (1.0, 0.0), False)  # behind the car
    # centre outside the 1.13 rad field of view, but a footprint corner inside it: seen
    x, y = 1.0, math.tan(0.565) * (1.0 - 0.145) + 0.22
    assert not in_frustum(0.0, 0.0, 0.0, (x, y, 0.1))
    assert object_in_camera(0.0, 0.0, 0.0, rectangle(x, y, 0.0, *CRASH_BOX), (x, y), False)
    # the camera looks down 15 degrees from 0.13 m: the floor nearer than ~0.3 m is out of view
    assert not in_frustum(0.0, 0.0, 0.0, (0.25, 0.0, 0.0))
    assert in_frustum(0.0, 0.0, 0.0, (0.8, 0.0, 0.0))
    # far away but in view: DeepRacer's far plane is 300 m
    assert in_frustum(0.0, 0.0, 0.0, (40.0, 0.0, 0.1))


def test_object_in_camera_looks_at_the_next_object_only() -> None:
    objects = ObjectsConfig(
        race_type="OBJECT_AVOIDANCE",
        number_of_obstacles=2,
        randomize_obstacle_locations=False,
        object_positions=((10.0, "inside"), (60.0, "inside")),
    )
    sim = Simulation("reinvent_base", objects=objects, episode=EpisodeConfig(mode="evaluation"))
    params = sim.reset().params
    assert params["closest_objects"][1] == 0 and params["object_in_camera"] is True
    # turned around: box 0 behind, the next object ahead is still box 0 by track order
    world = sim.world
    assert world is not None
    world.place(world.x, world.y, world.yaw + math.pi)
    assert sim.step(0.0, 0.0).params["object_in_camera"] is False


def test_fresh_params_cannot_leak_changes_into_the_next_call() -> None:
    sim = Simulation("reinvent_base", objects=ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=2))
    params = sim.reset().params
    copy = fresh_params(params)
    copy["waypoints"].pop()
    copy["closest_waypoints"][0] = -1
    copy["objects_location"].clear()
    copy["objects_heading"].append(1.0)
    copy["x"] = 99.0
    assert len(params["waypoints"]) == len(sim.track.waypoints)
    assert params["closest_waypoints"][0] != -1 and len(params["objects_location"]) == 2
    assert len(params["objects_heading"]) == 2 and params["x"] != 99.0
    assert all(type(w) is tuple for w in params["waypoints"])  # items cannot be changed in place


def test_crash_into_a_box_sets_is_crashed() -> None:
    objects = ObjectsConfig(
        race_type="OBJECT_AVOIDANCE",
        number_of_obstacles=1,
        randomize_obstacle_locations=False,
        object_positions=((20.0, "inside"),),
    )
    sim = Simulation("reinvent_base", objects=objects, episode=EpisodeConfig())
    sim.reset()
    box_lateral = sim.track.lane_lateral("inside")
    for _ in range(200):
        out = sim.step(steer_along_lane(sim, box_lateral), 1.0)
        if out.terminated:
            break
    assert out.status == "crashed"
    assert out.params["is_crashed"] is True
    assert out.params["objects_left_of_center"] == [box_lateral > 0]
    assert out.params["objects_distance"][0] == pytest.approx(0.2 * sim.track.length, abs=0.05)
    assert sim.metrics.as_dict()["episode_status"] == "Crashed"
