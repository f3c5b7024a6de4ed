"""DeepRacer's step order and progress rules, checked against real DeepRacer simtraces.

Fixtures: a DeepRacer-for-Cloud training simtrace on reinvent_base and a deepracer-on-aws
evaluation simtrace on Spain_track (tests/fixtures/deepracer-formats, MIT-0).
"""

from __future__ import annotations

import json
import math
import tarfile
from pathlib import Path
from typing import Any

import pytest

from race_server.sim.env import DeepRacerEnv
from race_server.sim.simtrace import SimtraceRow, read_simtrace
from race_server.sim.tracks import Track, load_track
from race_server.sim.world import REFERENCE_OFFSET

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepracer-formats"
DRFC = FIXTURES / "drfc-run-v4-discrete"
DROA = FIXTURES / "deepracer-on-aws-logs-v6" / "sample-droa-solution-logs.tar.gz"


def _drfc_rows() -> list[SimtraceRow]:
    return read_simtrace(DRFC / "training-simtrace" / "0-iteration.csv")


def _droa_evaluation_rows(tmp_path: Path) -> list[SimtraceRow]:
    with tarfile.open(DROA) as archive:
        archive.extractall(tmp_path, filter="data")
    (path,) = tmp_path.glob("**/evaluation-simtrace/0-iteration.csv")
    return read_simtrace(path)


def _closest_waypoint(track: Track, x: float, y: float) -> int:
    prev, nxt = track.locate(x, y).closest_waypoints
    wps = track.waypoints
    return prev if math.dist(wps[prev], (x, y)) <= math.dist(wps[nxt], (x, y)) else nxt


def _check_rows(track: Track, rows: list[SimtraceRow], origin_of: dict[int, float]) -> int:
    """Every row's progress (from the episode's start at the car origin) and closest_waypoint."""
    checked = 0
    for row in rows:
        if row.progress >= 100.0 or row.episode_status == "pause":
            continue  # capped / re-placed rows carry no geometry to check
        along = track.locate(row.x, row.y).projection_distance
        progress = 100.0 * ((along - origin_of[row.episode]) % track.length) / track.length
        assert progress == pytest.approx(row.progress, abs=1e-9), (row.episode, row.steps)
        assert _closest_waypoint(track, row.x, row.y) == row.closest_waypoint, (row.episode, row.steps)
        checked += 1
    return checked


def test_progress_counts_from_the_car_origin_in_drfc_training_rows() -> None:
    """DRfC on reinvent_base: round-robin starts every 5 % of the lap, measured at the car origin,
    while x, y and progress follow the point 0.14 m ahead: every row's progress and closest
    waypoint follow from its (X, Y) with Trackside's geometry."""
    track = load_track("reinvent_base")
    rows = _drfc_rows()
    origins = {row.episode: row.episode * 0.05 * track.length for row in rows}
    assert _check_rows(track, rows, origins) == 529
    first = rows[0]
    assert first.episode_status == "prepare" and first.steps == 1.0 and first.reward == 0.0
    assert first.progress == pytest.approx(100.0 * REFERENCE_OFFSET / track.length, abs=1e-3)


def test_progress_counts_from_the_car_origin_in_droa_evaluation_rows(tmp_path: Path) -> None:
    track = load_track("Spain_track")
    rows = _droa_evaluation_rows(tmp_path)
    starts = {row.episode: row for row in reversed(rows)}
    origins = {e: track.locate(r.x, r.y).projection_distance - REFERENCE_OFFSET for e, r in starts.items()}
    assert _check_rows(track, rows, origins) > 1200
    assert {r.episode_status for r in starts.values()} == {"prepare"}
    assert all(r.progress == pytest.approx(100.0 * REFERENCE_OFFSET / track.length, abs=1e-3) for r in starts.values())


def test_replaying_drfc_actions_reproduces_prepare_and_pose_action_pairing() -> None:
    """Replay episode 0's actions from its start pose: row 1 is prepare (action ignored, reward 0,
    no reward call); row k's params are read at the pose before action k, with action k's values."""
    metadata = json.loads((DRFC / "model" / "model_metadata.json").read_text())
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any]) -> float:
        calls.append(params)
        return 1.0

    env = DeepRacerEnv(metadata, {"route_id": "reinvent_base"}, record)
    env.reset(seed=0)
    world = env.sim.world
    assert world is not None
    rows = [r for r in _drfc_rows() if r.episode == 0]
    ours: list[dict[str, Any]] = []
    for row in rows:
        pose_before = world.reference_point()
        _, reward, terminated, truncated, info = env.step(row.action)
        params = info["params"]
        assert (params["x"], params["y"]) == pose_before  # the pose the action was chosen at
        assert info["action"] == (row.steer, row.throttle)  # paired with that action's values
        assert params["steps"] == row.steps and type(params["steps"]) is float
        ours.append({**params, "status": info["status"], "reward": reward})
        if terminated or truncated:
            break
    first, second = ours[0], ours[1]
    assert first["status"] == rows[0].episode_status == "prepare" and first["reward"] == 0.0
    assert calls[0]["steps"] == 2.0  # the reward function first sees step 2
    # the start pose and its progress match DeepRacer's row 1
    assert math.dist((first["x"], first["y"]), (rows[0].x, rows[0].y)) < 1e-3
    assert first["progress"] == pytest.approx(rows[0].progress, abs=0.01)
    assert _closest_waypoint(env.sim.track, first["x"], first["y"]) == rows[0].closest_waypoint
    # the prepare step ignores its action (20 degrees, 1 m/s): row 2 stands where row 1 stood
    assert math.dist((first["x"], first["y"]), (second["x"], second["y"])) < 1e-3
    assert math.dist((rows[0].x, rows[0].y), (rows[1].x, rows[1].y)) < 1e-3
    assert len(ours) > 10


@pytest.mark.parametrize("track_id", ["reinvent_base", "reInvent2019_track", "Spain_track"])
def test_first_reward_call_sees_step_two_and_progress_from_the_car_origin(track_id: str) -> None:
    firsts: list[tuple[float, float]] = []
    state = {"first": True}

    def reward(params: dict[str, Any]) -> float:
        if state["first"]:
            firsts.append((params["steps"], params["progress"]))
            state["first"] = False
        return 1.0

    env = DeepRacerEnv(world={"track_id": track_id, "episode": {"max_steps": 3}}, reward_function=reward)
    env.reset(seed=1)
    for _ in range(20):  # 20 round-robin start positions
        state["first"] = True
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(5)
            done = terminated or truncated
        env.reset()
    expected = 100.0 * REFERENCE_OFFSET / env.sim.track.length
    assert len(firsts) == 20
    assert all(steps == 2.0 for steps, _ in firsts)
    assert all(progress == pytest.approx(expected, abs=0.05) for _, progress in firsts)


def test_a_reward_function_that_mutates_params_sees_them_unchanged_next_call() -> None:
    seen: list[tuple[int, list[int], int]] = []

    def vandal(params: dict[str, Any]) -> float:
        seen.append((len(params["waypoints"]), list(params["closest_waypoints"]), len(params["objects_location"])))
        params["waypoints"].pop()
        params["waypoints"].pop(0)
        params["closest_waypoints"].append(99)
        params["objects_location"].clear()
        params["progress"] = -1.0
        return 1.0

    env = DeepRacerEnv(
        world={"objects": {"race_type": "HEAD_TO_BOT", "number_of_bots": 2}},
        reward_function=vandal,
    )
    env.reset(seed=0)
    for _ in range(8):
        info = env.step(5)[4]
        assert info["params"]["progress"] >= 0.0
    n = len(env.sim.track.waypoints)
    assert [s[0] for s in seen] == [n] * 7  # lengths 119, 118, 117, ... before the fix
    assert all(len(s[1]) == 2 and s[2] == 2 for s in seen)


def test_a_penalty_pause_counts_its_steps_at_the_step_rate() -> None:
    """DeepRacer keeps stepping at 15 Hz while the car waits out a penalty: a 3 s pause is 45 steps."""
    world = {"episode": {"mode": "evaluation", "resets": 1, "off_track_penalty": 3.0}}
    env = DeepRacerEnv(world=world)
    env.reset(seed=0)
    steps: list[tuple[float, str]] = []
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(0)  # hard right: off the track soon
        steps.append((info["params"]["steps"], info["status"]))
        done = terminated or truncated
    (pause_at,) = [i for i, (_, status) in enumerate(steps) if status == "pause"]
    assert steps[pause_at + 1][0] == steps[pause_at][0] + 1.0 + 45.0
    assert [s for s, _ in steps[: pause_at + 1]] == [float(k) for k in range(1, pause_at + 2)]
