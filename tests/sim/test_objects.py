"""Obstacle boxes and bot cars: config validation, layouts, bot motion and lane changes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import shapely

from race_server.sim.episode import EpisodeConfig, Simulation
from race_server.sim.objects import (
    BOT_LENGTH,
    BOT_PENALTY_SECONDS,
    BOT_WIDTH,
    BOX_HEIGHT,
    BOX_LENGTH,
    BOX_WIDTH,
    ObjectsConfig,
    TrackObjects,
)
from race_server.sim.tracks import Track, load_track
from tests.sim.driving import steer_along_lane


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


def _lane_of(track: Track, x: float, y: float) -> str:
    """The lane line (halfway between the centre line and a border) nearest to (x, y)."""
    inner = np.min(np.hypot(*(track.inner_lane - (x, y)).T))
    outer = np.min(np.hypot(*(track.outer_lane - (x, y)).T))
    return "inside" if inner < outer else "outside"


def _on_lane_line(track: Track, x: float, y: float, lane: str) -> bool:
    line = shapely.LineString(track.inner_lane if lane == "inside" else track.outer_lane)
    return bool(shapely.distance(line, shapely.Point(x, y)) < 1e-6)


def test_fixed_layout_percent_of_lap_and_lane_side(track: Track) -> None:
    positions = ((20.0, "outside"), (40.0, "inside"), (60.0, "outside"), (80.0, "outside"))
    config = ObjectsConfig(
        race_type="OBJECT_AVOIDANCE",
        number_of_obstacles=4,
        randomize_obstacle_locations=False,
        object_positions=positions,
    )
    objects = TrackObjects(track, config, np.random.default_rng(0))
    assert len(objects.boxes) == 4
    assert objects.is_bot == [False] * 4
    assert objects.speeds == [0.0] * 4
    for box, (percent, lane) in zip(objects.boxes, positions, strict=True):
        pos = track.locate(box.x, box.y)
        assert pos.progress == pytest.approx(percent, abs=0.5)
        assert _on_lane_line(track, box.x, box.y, lane)
        assert (box.length, box.width, box.height) == (BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
        assert math.cos(box.yaw - math.radians(pos.heading)) > 0.95  # long side across the road
    # a 15.25" box centred in a ~0.38 m lane reaches onto the 5 cm border line (more on curves)
    assert _on_road(track, objects.footprints(), tolerance=0.03)


def test_deepracer_default_boxes_even_to_one_metre_before_the_end_alternating_from_inside(track: Track) -> None:
    """DeepRacer's ObstaclesCtrl without positions: linspace(gap, L - 1, n), inner lane first."""
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=3, randomize_obstacle_locations=False)
    objects = TrackObjects(track, config, np.random.default_rng(0))
    gap = 0.02 * track.length  # min_distance_between_obstacles = 2 (percent of the lap)
    assert objects.distances == pytest.approx(list(np.linspace(gap, track.length - 1.0, 3)))
    assert [_lane_of(track, b.x, b.y) for b in objects.boxes] == ["inside", "outside", "inside"]
    for box, lane in zip(objects.boxes, objects.lanes, strict=True):
        assert _on_lane_line(track, box.x, box.y, lane)


def test_layouts_ignore_the_episode_start(track: Track) -> None:
    """DeepRacer measures object positions from route row 0, wherever the episode starts."""
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=3, randomize_obstacle_locations=False)
    sim = Simulation("reinvent_base", objects=config)
    first = [(b.x, b.y) for b in (sim.reset(), sim.track_objects)[1].boxes]  # type: ignore[union-attr]
    second = [(b.x, b.y) for b in (sim.reset(), sim.track_objects)[1].boxes]  # type: ignore[union-attr]
    assert first == second


@pytest.mark.parametrize("seed", range(8))
def test_random_boxes_keep_two_percent_of_the_lap_apart(track: Track, seed: int) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=6, min_distance_between_obstacles=2.0)
    objects = TrackObjects(track, config, np.random.default_rng(seed))
    gap = 0.02 * track.length
    d = objects.distances
    assert all(gap - 1e-9 <= x <= track.length - 1.0 + 1e-9 for x in d)
    assert all(b - a >= gap - 1e-9 for a, b in itertools.pairwise(d))  # order kept, gaps kept
    for box, lane in zip(objects.boxes, objects.lanes, strict=True):
        assert _on_lane_line(track, box.x, box.y, lane)
    assert _on_road(track, objects.footprints(), tolerance=0.03)


def test_random_lanes_are_drawn_per_box(track: Track) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=6)
    layouts = {tuple(TrackObjects(track, config, np.random.default_rng(s)).lanes) for s in range(12)}
    assert len(layouts) > 3  # not a fixed alternation


def test_random_layout_is_deterministic_per_seed(track: Track) -> None:
    config = ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=4)
    a = TrackObjects(track, config, np.random.default_rng(42)).boxes
    b = TrackObjects(track, config, np.random.default_rng(42)).boxes
    c = TrackObjects(track, config, np.random.default_rng(43)).boxes
    assert a == b
    assert a != c


def test_deepracer_bots_start_from_two_metres_to_one_before_the_end_alternating(track: Track) -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=3, bot_speed=1.5)
    objects = TrackObjects(track, config, np.random.default_rng(7))
    length = track.length
    assert objects.is_bot == [True] * 3
    assert objects.speeds == [1.5] * 3
    assert objects.distances == pytest.approx(list(np.linspace(2.0, length - 1.0, 3)))
    assert [_lane_of(track, b.x, b.y) for b in objects.boxes] == ["inside", "outside", "inside"]
    box = objects.boxes[0]
    assert (box.length, box.width) == (BOT_LENGTH, BOT_WIDTH)
    before = list(objects.distances)
    for _ in range(30):
        objects.advance(1.0 / 15.0)
    for d0, d1 in zip(before, objects.distances, strict=True):
        assert (d1 - d0) % length == pytest.approx(1.5 * 2.0, abs=1e-9)
    for i, b in enumerate(objects.boxes):
        x, y, heading = track.lane_point(objects.lanes[i], objects.distances[i])
        assert (b.x, b.y) == pytest.approx((x, y))
        assert math.cos(b.yaw - heading) == pytest.approx(1.0)
        # objects_heading is DeepRacer's: radians
        assert objects.headings[i] == pytest.approx(math.atan2(math.sin(b.yaw), math.cos(b.yaw)))


def test_bot_lane_changes_take_one_metre_and_stay_on_the_road(track: Track) -> None:
    config = ObjectsConfig(
        race_type="HEAD_TO_BOT",
        number_of_bots=2,
        bot_speed=0.5,
        is_lane_change=True,
        lower_lane_change_time=1.0,
        upper_lane_change_time=2.0,
    )
    objects = TrackObjects(track, config, np.random.default_rng(3))
    dt = 1.0 / 15.0
    changing_since: list[float | None] = [None, None]
    durations: list[float] = []
    lanes_seen: set[str] = set()
    for _ in range(int(20 / dt)):
        objects.advance(dt)
        assert _on_road(track, objects.footprints(), tolerance=0.0)
        for k in range(2):
            lanes_seen.add(_lane_of(track, objects.boxes[k].x, objects.boxes[k].y))
            if objects.is_changing_lane(k) and changing_since[k] is None:
                changing_since[k] = objects.distances[k]
            elif not objects.is_changing_lane(k) and (since := changing_since[k]) is not None:
                durations.append((objects.distances[k] - since) % track.length)
                changing_since[k] = None
                assert _on_lane_line(track, objects.boxes[k].x, objects.boxes[k].y, objects.lanes[k])
    assert lanes_seen == {"inside", "outside"} and durations
    # a change covers 1 m of travel (measured from the first step that moves sideways)
    assert all(1.0 - 0.5 * dt - 1e-9 <= d <= 1.0 + 0.5 * dt + 1e-9 for d in durations)


def test_bots_without_lane_change_keep_their_lane(track: Track) -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=4, bot_speed=3.0)
    objects = TrackObjects(track, config, np.random.default_rng(5))
    start = list(objects.lanes)
    for _ in range(150):
        objects.advance(0.1)
        for box, lane in zip(objects.boxes, objects.lanes, strict=True):
            assert _on_lane_line(track, box.x, box.y, lane)
    assert objects.lanes == start


def test_paused_bots_stand_still_for_the_penalty(track: Track) -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=2, bot_speed=1.0)
    objects = TrackObjects(track, config, np.random.default_rng(0))
    before = list(objects.distances)
    objects.pause_bots(BOT_PENALTY_SECONDS)
    for _ in range(30):  # 2 s
        objects.advance(1.0 / 15.0)
    assert objects.distances == pytest.approx(before)
    objects.advance(0.5)
    assert [(b - a) % track.length for a, b in zip(before, objects.distances, strict=True)] == pytest.approx([0.5, 0.5])


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


def test_a_bot_that_rear_ends_the_car_stops_for_the_penalty_and_the_car_drives_on() -> None:
    """DeepRacer's BotCarsCtrl: a collision with the car ahead of the bot pauses the bots, not the car."""
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=2, bot_speed=1.0)
    # the car waits for the bot: no immobilized reset meanwhile
    sim = Simulation("reinvent_base", objects=config, episode=EpisodeConfig(mode="evaluation", immobile_steps=1000))
    sim.reset()
    objects, world = sim.track_objects, sim.world
    assert objects is not None and world is not None
    # the second bot starts 1 m before the line in the outside lane: stand in its way
    assert objects.lanes[1] == "outside"
    world.place(*sim.track.lane_point("outside", 0.4))
    statuses = []
    for _ in range(45):
        statuses.append(sim.step(0.0, 0.0).status)
        if objects.bots_paused:
            break
    assert objects.bots_paused and "crashed" not in statuses
    held = list(objects.distances)
    for _ in range(int(BOT_PENALTY_SECONDS * 15) - 2):
        statuses.append(sim.step(0.0, 0.0).status)
    assert objects.distances == pytest.approx(held)
    assert set(statuses) == {"in_progress"}


def test_after_a_bot_collision_the_car_is_held_where_it_is() -> None:
    config = ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=1, bot_speed=0.2)
    sim = Simulation("reinvent_base", objects=config, episode=EpisodeConfig(mode="evaluation", resets=None))
    sim.reset()
    world = sim.world
    assert world is not None and sim.track_objects is not None
    inside = sim.track.lane_lateral("inside")
    for _ in range(300):
        before = (world.x, world.y)
        out = sim.step(steer_along_lane(sim, inside), 1.5)
        if out.status == "pause":
            break
    assert out.status == "pause" and sim.metrics.crash_count == 1
    # not re-placed: the car stands where the crash left it (a box would send it 1 m back)
    assert math.dist((world.x, world.y), before) < 0.2
    assert out.params["is_crashed"] is True
