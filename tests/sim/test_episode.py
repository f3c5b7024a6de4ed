"""Episode rules: starts, termination order, evaluation resets and penalties, lap timing."""

from __future__ import annotations

import pytest

from race_server.sim.episode import EpisodeConfig, Simulation, StepOutcome
from race_server.sim.objects import ObjectsConfig
from race_server.sim.pursuit import pure_pursuit
from tests.sim.driving import steer_along_lane


def _drive(sim: Simulation, speed: float = 1.5) -> StepOutcome:
    world = sim.world
    assert world is not None
    return sim.step(*pure_pursuit(sim.track, world.x, world.y, world.yaw, speed))


def _start_distance(sim: Simulation) -> float:
    world = sim.world
    assert world is not None
    return sim.track.locate(world.x, world.y).projection_distance


def test_training_starts_round_robin_five_percent() -> None:
    sim = Simulation("reinvent_base")
    length = sim.track.length
    for k in range(4):
        out = sim.reset()
        assert _start_distance(sim) == pytest.approx(0.05 * k * length, abs=1e-6)
        # DeepRacer's start is the car origin; progress follows the point 0.14 m ahead of it
        assert out.params["progress"] == pytest.approx(100.0 * 0.14 / length, abs=0.02)
        assert out.params["steps"] == 0.0


def test_alternating_direction() -> None:
    sim = Simulation("reInvent2019_track", episode=EpisodeConfig(alternate_direction=True))
    assert [sim.reset().params["is_reversed"] for _ in range(4)] == [False, True, False, True]


def test_lap_complete_ends_a_training_episode() -> None:
    sim = Simulation("reinvent_base")
    sim.reset()
    while True:
        out = _drive(sim, 2.0)
        if out.terminated or out.truncated:
            break
    assert out.status == "lap_complete" and out.terminated and not out.truncated
    assert out.params["progress"] == 100.0
    assert sim.metrics.as_dict()["episode_status"] == "Lap complete"


def test_steering_hard_right_goes_off_track() -> None:
    sim = Simulation("reinvent_base")
    sim.reset()
    for _ in range(100):
        out = sim.step(-30.0, 1.0)
        if out.terminated:
            break
    assert out.status == "off_track" and out.terminated
    assert out.params["is_offtrack"] is True and out.params["all_wheels_on_track"] is False
    assert sim.metrics.as_dict()["episode_status"] == "Off track"


def test_immobilised_after_fifteen_still_steps() -> None:
    sim = Simulation("reinvent_base")
    sim.reset()
    statuses = [sim.step(0.0, 0.0).status for _ in range(15)]
    assert statuses[:14] == ["in_progress"] * 14
    assert statuses[14] == "immobilized"
    assert sim.metrics.as_dict()["episode_status"] == "Immobilized"


def test_reversed_after_fifteen_steps_of_falling_progress() -> None:
    sim = Simulation("reinvent_base")
    sim.reset()
    for _ in range(5):
        sim.step(0.0, 1.0)
    backwards_steps = 0
    while backwards_steps < 60:
        out = sim.step(0.0, -1.0)
        backwards_steps += 1
        if out.terminated:
            break
    assert out.status == "reversed"
    assert backwards_steps > 15  # the car has to stop first, then 15 steps of falling progress


def test_time_up_and_step_limit_truncate() -> None:
    sim = Simulation("reinvent_base", episode=EpisodeConfig(time_limit=1.0))
    sim.reset()
    outs = [_drive(sim) for _ in range(15)]
    assert [o.truncated for o in outs] == [False] * 14 + [True]
    assert outs[-1].status == "time_up" and not outs[-1].terminated
    sim = Simulation("reinvent_base", episode=EpisodeConfig(max_steps=7))
    sim.reset()
    outs = [_drive(sim) for _ in range(7)]
    assert outs[-1].truncated and outs[-1].status == "time_up"
    assert sim.metrics.as_dict()["episode_status"] == "Time up"


def test_crash_is_checked_before_off_track() -> None:
    objects = ObjectsConfig(
        race_type="OBJECT_AVOIDANCE", number_of_obstacles=1, randomize_obstacle_locations=False,
        object_positions=((10.0, "inside"),),
    )  # fmt: skip
    sim = Simulation("reinvent_base", objects=objects)
    sim.reset()
    lateral = sim.track.lane_lateral("inside")
    for _ in range(100):
        out = sim.step(steer_along_lane(sim, lateral), 1.0)
        if out.terminated:
            break
    assert out.status == "crashed"


def _off_track_once(sim: Simulation) -> tuple[StepOutcome, float]:
    """Drive to 10 % then steer hard right until the step that ends in a reset."""
    while sim.last_params["progress"] < 10.0:
        _drive(sim)
    while True:
        before = sim.last_params["progress"]
        out = sim.step(-30.0, 1.5)
        if out.status != "in_progress":
            return out, before


def test_evaluation_off_track_pauses_and_replaces_the_car() -> None:
    sim = Simulation("reinvent_base", episode=EpisodeConfig(mode="evaluation", off_track_penalty=2.0))
    sim.reset()
    world = sim.world
    assert world is not None
    out, before = _off_track_once(sim)
    time_before_pause = (out.params["steps"]) / 15.0
    assert out.status == "pause" and not out.terminated and out.pause_duration == 2.0
    assert world.sim_time == pytest.approx(time_before_pause + 2.0)
    m = sim.metrics.as_dict()
    assert m["off_track_count"] == 1 and m["reset_count"] == 1
    # back on the road, at rest, near the previous step's progress, in a lane
    assert sim.track.contains(world.wheel_centres()).all()
    assert abs(world.speed) < 1e-9
    rx, ry = world.reference_point()
    pos = sim.track.locate(rx, ry)
    assert abs(pos.distance_from_center - sim.track.width / 4.0) < 0.02
    assert sim.progress.prev == pytest.approx(before, abs=0.5)
    nxt = _drive(sim)
    assert not nxt.terminated and nxt.params["all_wheels_on_track"]


def test_evaluation_without_resets_ends_on_off_track() -> None:
    sim = Simulation("reinvent_base", episode=EpisodeConfig(mode="evaluation", resets=0))
    sim.reset()
    out, _ = _off_track_once(sim)
    assert out.status == "off_track" and out.terminated


def test_evaluation_static_crash_puts_the_car_behind_the_box_in_the_other_lane() -> None:
    objects = ObjectsConfig(
        race_type="OBJECT_AVOIDANCE", number_of_obstacles=1, randomize_obstacle_locations=False,
        object_positions=((20.0, "outside"),),
    )  # fmt: skip
    sim = Simulation("reinvent_base", objects=objects, episode=EpisodeConfig(mode="evaluation", collision_penalty=5.0))
    sim.reset()
    lateral = sim.track.lane_lateral("outside")
    for _ in range(200):
        out = sim.step(steer_along_lane(sim, lateral), 1.0)
        if out.status != "in_progress":
            break
    assert out.status == "pause" and out.pause_duration == 5.0
    assert sim.metrics.crash_count == 1
    world = sim.world
    assert world is not None
    rx, ry = world.reference_point()
    pos = sim.track.locate(rx, ry)
    box_distance = 0.2 * sim.track.length
    assert pos.projection_distance == pytest.approx(box_distance - 1.0, abs=0.02)
    assert pos.is_left_of_center == (sim.track.lane_lateral("inside") > 0)  # the other lane
    assert not sim.track_objects or not world.touching_objects()


def _eval_laps(laps: int, stall_in_lap: int | None = None) -> list[float]:
    sim = Simulation(
        "reinvent_base",
        episode=EpisodeConfig(mode="evaluation", continuous_laps=True, max_laps=laps, off_track_penalty=3.0),
    )
    sim.reset()
    stalled = False
    while True:
        lap = len(sim.metrics.laps)
        if lap == stall_in_lap and not stalled and sim.last_params["progress"] > 40.0:
            while sim.step(0.0, 0.0).status != "pause":
                pass
            stalled = True
            continue
        out = _drive(sim, 2.0)
        if out.terminated or out.truncated:
            assert out.status == "lap_complete"
            return sim.metrics.laps


def test_continuous_laps_with_sub_step_lap_timing() -> None:
    laps = _eval_laps(2)
    assert len(laps) == 2
    for lap in laps:
        assert 8.0 < lap < 11.0
        steps = lap * 15.0
        assert abs(steps - round(steps)) > 1e-6  # interpolated inside a control step
    # the second lap starts at the interpolated crossing of the first, at speed: faster
    assert laps[1] < laps[0]


def test_penalty_pause_counts_in_lap_time() -> None:
    clean = _eval_laps(2)
    stalled = _eval_laps(2, stall_in_lap=1)
    assert stalled[0] == pytest.approx(clean[0])
    lost = stalled[1] - clean[1]
    # 15 still steps (1 s) + 3 s penalty + re-accelerating from rest
    assert 4.0 < lost < 6.0


def test_bad_config_is_rejected_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="mode"):
        EpisodeConfig(mode="racing")
    with pytest.raises(ValueError, match="off_track_penalty"):
        EpisodeConfig(off_track_penalty=45.0)
    with pytest.raises(ValueError, match="route_id"):
        Simulation("no_such_track")
    with pytest.raises(ValueError, match="number_of_obstacles"):
        ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=7)
    with pytest.raises(ValueError, match="number_of_bots"):
        ObjectsConfig(race_type="HEAD_TO_BOT", number_of_bots=0)


def test_open_route_completes_at_its_end() -> None:
    sim = Simulation("Straight_track")
    assert not sim.track.is_loop
    for _ in range(3):  # no round-robin on an open route: every episode starts at row 0
        sim.reset()
        assert _start_distance(sim) == pytest.approx(0.0, abs=1e-6)
    while True:
        out = _drive(sim, 2.0)
        if out.terminated or out.truncated:
            break
    assert out.status == "lap_complete" and out.params["progress"] == 100.0
