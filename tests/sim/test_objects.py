"""Obstacle boxes and bot cars: config validation, layouts, bot motion and lane changes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import shapely

from race_server.sim.objects import (
    BOT_LENGTH,
    BOT_WIDTH,
    BOX_HEIGHT,
    BOX_LENGTH,
    BOX_WIDTH,
    ObjectsConfig,
    TrackObjects,
)
from race_server.sim.tracks import Track, load_track


@pytest.fixture(scope="module")
def track() -> Track:
    return load_track("reinvent_base")


def _on_road(track: Track, footprints: np.ndarray, tolerance: float) -> bool:
    """Centres strictly on the road and no corner further than ``tolerance`` outside it."""
    centres = footprints.mean(axis=1)
    corners = footprints.reshape(-1, 2)
    outside = shapely.distance(track.road_polygon, shapely.points(corners))
    return bool(track.contains(centres).all() and np.max(outside) <= tolerance)


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"race_type": "DRAG_RACE"}, "race_type", "TIME_TRIAL, OBJECT_AVOIDANCE, HEAD_TO_BOT"),
        ({"race_type": "OBJECT_AVOIDANCE", "number_of_obstacles": 0}, "number_of_obstacles", "1 to 6"),
        ({"race_type": "OBJECT_AVOIDANCE", "number_of_obstacles": 7}, "number_of_obstacles", "1 to 6"),
        ({"race_type": "HEAD_TO_BOT", "number_of_bots": 0}, "number_of_bots", "1 to 6"),
        ({"race_type": "HEAD_TO_BOT", "number_of_bots": 7}, "number_of_bots", "1 to 6"),
        ({"bot_speed": 0.1}, "bot_speed", "0.2 to 6"),
        ({"bot_speed": 6.5}, "bot_speed", "0.2 to 6"),
        ({"lower_lane_change_time": 0.5}, "lower_lane_change_time", "1 to 8"),
        ({"upper_lane_change_time": 9.0}, "upper_lane_change_time", "1 to 8"),
        ({"lower_lane_change_time": 6.0, "upper_lane_change_time": 4.0}, "lower_lane_change_time", "<="),
        ({"object_positions": ((5.0, "inside"),)}, "object_positions[0] percent", "7 to 90"),
        ({"object_positions": ((50.0, "inside"), (95.0, "outside"))}, "object_positions[1] percent", "7 to 90"),
        ({"object_positions": ((50.0, "middle"),)}, "object_positions[0] lane", "inside, outside"),
        (
            {
                "race_type": "OBJECT_AVOIDANCE",
                "number_of_obstacles": 3,
                "randomize_obstacle_locations": False,
                "object_positions": ((20.0, "inside"),),
            },
            "object_positions",
            "exactly one per obstacle",
        ),
    ],
)
def test_config_validation_names_field_and_allowed_values(kwargs: dict[str, object], field: str, allowed: str) -> None:
    with pytest.raises(ValueError) as err:
        ObjectsConfig(**kwargs)  # type: ignore[arg-type]
    message = str(err.value)
    assert message.startswith(field + ":")
    assert allowed in message


def test_counts_of_other_race_types_are_ignored(track: Track) -> None:
    # DeepRacer-for-Cloud configs carry obstacle counts even for time trials
    config = ObjectsConfig(race_type="TIME_TRIAL", number_of_obstacles=6, number_of_bots=3)
    objects = TrackObjects(track, config, np.random.default_rng(0))
    assert objects.boxes == []
    assert objects.footprints().shape == (0, 4, 2)


def test_fixed_layout_percent_of_lap_and_lane_side(track: Track) -> None:
    positions = ((20.0, "outside"), (40.0, "inside"), (60.0, "outside"), (80.0, "outside"))
    config = ObjectsConfig(
        race_type="OBJECT_AVOIDANCE",
        number_of_obstacles=4,
        randomize_obstacle_locations=False,
        object_positions=positions,
    )
    objects = TrackObjects(track, config, np.random.default_rng(0), start_distance=5.0)
    assert len(objects.boxes) == 4
    assert objects.is_bot == [False] * 4
    assert objects.speeds == [0.0] * 4
    for box, (percent, lane) in zip(objects.boxes, positions, strict=True):
        pos = track.locate(box.x, box.y)
        assert pos.progress == pytest.approx(percent, abs=0.05)
        assert pos.distance_from_center == pytest.approx(track.width / 4.0, abs=0.03)
        inner = np.min(np.hypot(*(track.inner_border - (box.x, box.y)).T))
        outer = np.min(np.hypot(*(track.outer_border - (box.x, box.y)).T))
        assert (inner < outer) == (lane == "inside")
        assert (box.length, box.width, box.height) == (BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
        assert math.cos(box.yaw - math.radians(pos.heading)) > 0.99  # long side across the road
    # a 15.25" box centred in a ~0.38 m lane reaches onto the 5 cm border line (more on curves)
    assert _on_road(track, objects.footprints(), tolerance=0.03)


def test_fixed_layout_defaults_spread_evenly_alternating(track: Track) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=3, randomize_obstacle_locations=False)
    objects = TrackObjects(track, config, np.random.default_rng(0))
    progress = [track.locate(b.x, b.y).progress for b in objects.boxes]
    assert progress == pytest.approx([25.0, 50.0, 75.0], abs=0.05)
    sides = np.sign(objects.laterals)
    assert sides[0] == -sides[1] == sides[2]


@pytest.mark.parametrize("seed", range(8))
def test_random_layout_spacing_window_and_lanes(track: Track, seed: int) -> None:
    start = 4.0
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=6, min_distance_between_obstacles=2.0)
    objects = TrackObjects(track, config, np.random.default_rng(seed), start_distance=start)
    length = track.length
    ahead = [(d - start) % length for d in objects.distances]
    assert all(0.07 * length - 1e-9 <= a <= 0.90 * length + 1e-9 for a in ahead)
    ordered = sorted(ahead)
    assert all(b - a >= 2.0 - 1e-9 for a, b in itertools.pairwise(ordered))
    lane_sign = np.sign([objects.laterals[ahead.index(a)] for a in ordered])
    assert all(lane_sign[i] == -lane_sign[i + 1] for i in range(len(lane_sign) - 1))
    assert _on_road(track, objects.footprints(), tolerance=0.03)


def test_random_layout_is_deterministic_per_seed(track: Track) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=4)
    a = TrackObjects(track, config, np.random.default_rng(42)).boxes
    b = TrackObjects(track, config, np.random.default_rng(42)).boxes
    c = TrackObjects(track, config, np.random.default_rng(43)).boxes
    assert a == b
    assert a != c


def test_random_layout_rejects_impossible_spacing(track: Track) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=6, min_distance_between_obstacles=5.0)
    with pytest.raises(ValueError, match="min_distance_between_obstacles"):
        TrackObjects(track, config, np.random.default_rng(0))


def test_bots_spaced_around_lap_and_advance_by_speed_dt(track: Track) -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=3, bot_speed=1.5)
    objects = TrackObjects(track, config, np.random.default_rng(7), start_distance=2.0)
    length = track.length
    assert objects.is_bot == [True] * 3
    assert objects.speeds == [1.5] * 3
    expected = [(2.0 + length * k / 4.0) % length for k in (1, 2, 3)]
    assert objects.distances == pytest.approx(expected)
    box = objects.boxes[0]
    assert (box.length, box.width) == (BOT_LENGTH, BOT_WIDTH)
    before = list(objects.distances)
    for _ in range(30):
        objects.advance(1.0 / 15.0)
    for d0, d1 in zip(before, objects.distances, strict=True):
        assert (d1 - d0) % length == pytest.approx(1.5 * 2.0, abs=1e-9)
    # the box sits where the track says that distance and lane are, heading along the track
    for i, b in enumerate(objects.boxes):
        x, y, heading = track.pose_at(objects.distances[i], objects.laterals[i])
        assert (b.x, b.y) == pytest.approx((x, y))
        assert abs(objects.laterals[i]) == pytest.approx(track.width / 4.0)
        assert math.cos(b.yaw - heading) == pytest.approx(1.0)
        assert math.radians(objects.headings_deg[i]) == pytest.approx(math.atan2(math.sin(b.yaw), math.cos(b.yaw)))


def test_bot_lane_changes_are_smooth_and_stay_on_the_road(track: Track) -> None:
    config = ObjectsConfig(
        race_type="HEAD_TO_BOT",
        number_of_bots=2,
        bot_speed=1.0,
        is_lane_change=True,
        lower_lane_change_time=1.0,
        upper_lane_change_time=2.0,
    )
    objects = TrackObjects(track, config, np.random.default_rng(3))
    dt = 1.0 / 15.0
    lane = track.width / 4.0
    laterals = []
    for _ in range(int(20 / dt)):
        objects.advance(dt)
        laterals.append(list(objects.laterals))
        assert _on_road(track, objects.footprints(), tolerance=0.0)
    lat = np.array(laterals)
    assert np.all(np.abs(lat) <= lane + 1e-9)
    for k in range(2):
        assert lat[:, k].max() == pytest.approx(lane) and lat[:, k].min() == pytest.approx(-lane)
    # a cosine blend over >= 1 m: slope at most pi/2 * (2 * lane) / 1 m, and no kinks
    step = np.abs(np.diff(lat, axis=0))
    travel = 1.0 * dt
    assert step.max() <= math.pi / 2.0 * 2.0 * lane / 1.0 * travel + 1e-9
    assert np.abs(np.diff(lat, n=2, axis=0)).max() < 0.01


def test_bots_without_lane_change_keep_their_lane(track: Track) -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=4, bot_speed=3.0)
    objects = TrackObjects(track, config, np.random.default_rng(5))
    start = list(objects.laterals)
    for _ in range(150):
        objects.advance(0.1)
    assert objects.laterals == start


def test_bot_motion_is_deterministic_per_seed(track: Track) -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=3, bot_speed=2.0, is_lane_change=True)

    def run(seed: int) -> list[object]:
        objects = TrackObjects(track, config, np.random.default_rng(seed))
        for _ in range(200):
            objects.advance(1.0 / 15.0)
        return list(objects.boxes)

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_footprints_are_the_box_corners(track: Track) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=2)
    objects = TrackObjects(track, config, np.random.default_rng(1))
    fp = objects.footprints()
    assert fp.shape == (2, 4, 2)
    for corners, box in zip(fp, objects.boxes, strict=True):
        assert corners.mean(axis=0) == pytest.approx((box.x, box.y))
        edges = np.hypot(*np.diff(np.vstack([corners, corners[:1]]), axis=0).T)
        assert sorted(edges) == pytest.approx(sorted([box.length, box.length, box.width, box.width]))


def test_advance_rejects_negative_dt(track: Track) -> None:
    objects = TrackObjects(track, ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="dt"):
        objects.advance(-0.1)
