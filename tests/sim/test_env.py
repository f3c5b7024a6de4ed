"""The Gymnasium env: spaces, registration, check_env, rewards, errors; metadata parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from race_server.sim import ENV_ID
from race_server.sim.env import DeepRacerEnv, RewardFunctionError, WorldConfig
from race_server.sim.episode import EpisodeConfig
from race_server.sim.metadata import MetadataError, default_model_metadata, parse_model_metadata
from race_server.sim.objects import ObjectsConfig
from race_server.sim.vector import make_vector_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "deepracer-formats"


def _act(steering: float, speed: float) -> dict[str, float]:
    return {"steering_angle": steering, "speed": speed}


def _metadata(sensors: list[str], continuous: bool = False) -> dict[str, Any]:
    meta = default_model_metadata()
    meta["sensor"] = sensors
    if continuous:
        meta["action_space"] = {"steering_angle": {"low": -20, "high": 30}, "speed": {"low": 1, "high": 3}}
        meta["action_space_type"] = "continuous"
    return meta


def test_make_with_no_args_is_the_console_default() -> None:
    env = gym.make(ENV_ID)
    base = env.unwrapped
    assert isinstance(base, DeepRacerEnv)
    assert env.action_space == gym.spaces.Discrete(10)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Dict)
    cam = space.spaces["FRONT_FACING_CAMERA"]
    assert cam.shape == (120, 160, 1) and cam.dtype == np.uint8
    assert set(space.spaces) == {"FRONT_FACING_CAMERA"}
    assert [base.action_values(i) for i in (0, 1, 2, 9)] == [(-30.0, 0.5), (-30.0, 1.0), (-15.0, 0.5), (30.0, 1.0)]
    assert base.model.neural_network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    obs, info = env.reset(seed=0)
    assert info["params"]["track_length"] == pytest.approx(17.709, abs=0.01)
    assert obs["FRONT_FACING_CAMERA"].dtype == np.uint8
    assert 20 < float(obs["FRONT_FACING_CAMERA"].mean()) < 235  # an actual picture
    env.close()


@pytest.mark.parametrize(
    ("sensors", "continuous"),
    [
        (["FRONT_FACING_CAMERA"], False),
        (["FRONT_FACING_CAMERA"], True),
        (["STEREO_CAMERAS"], False),
        (["FRONT_FACING_CAMERA", "LIDAR"], True),
        (["STEREO_CAMERAS", "SECTOR_LIDAR"], False),
        (["FRONT_FACING_CAMERA", "DISCRETIZED_SECTOR_LIDAR"], False),
    ],
    ids=["discrete", "continuous", "stereo", "lidar", "stereo_sector_lidar", "discretized_sector_lidar"],
)
def test_check_env(sensors: list[str], continuous: bool) -> None:
    env = DeepRacerEnv(_metadata(sensors, continuous), {"objects": {"race_type": "HEAD_TO_BOT", "number_of_bots": 2}})
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert set(obs) == set(sensors)
    for name in sensors:
        assert env.sensor_spaces[name].contains(obs[name])
    if "STEREO_CAMERAS" in sensors:
        assert obs["STEREO_CAMERAS"].shape == (120, 160, 2)
        assert not np.array_equal(obs["STEREO_CAMERAS"][:, :, 0], obs["STEREO_CAMERAS"][:, :, 1])
    if "LIDAR" in sensors:
        assert obs["LIDAR"].shape == (64,)


def test_continuous_actions_scale_to_the_bounds() -> None:
    env = DeepRacerEnv(_metadata(["FRONT_FACING_CAMERA"], continuous=True))
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert env.action_values(np.array([-1.0, -1.0])) == (-20.0, 1.0)
    assert env.action_values(np.array([1.0, 1.0])) == (30.0, 3.0)
    assert env.action_values(np.array([0.0, 0.0])) == (5.0, 2.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert info["params"]["steering_angle"] == 30.0 and info["params"]["speed"] == 2.0


def test_reward_function_sees_params_and_runs_on_the_final_step() -> None:
    seen: list[dict[str, Any]] = []

    def reward(params: dict[str, Any]) -> float:
        seen.append(params)
        return np.float32(2.5) if params["is_offtrack"] else 1  # type: ignore[return-value]

    env = DeepRacerEnv(world={"episode": {"max_steps": 500}}, reward_function=reward)
    env.reset(seed=0)
    rewards = []
    while True:
        _, r, terminated, truncated, info = env.step(0)  # -30 degrees: hard right
        rewards.append(r)
        if terminated or truncated:
            break
    assert terminated and not truncated and info["status"] == "off_track"
    assert seen[-1]["is_offtrack"] is True and rewards[-1] == 2.5 and type(rewards[-1]) is float
    # step 1 is DeepRacer's prepare step: reward 0, the reward function not called
    assert rewards[0] == 0.0 and seen[0]["steps"] == 2.0 and len(seen) == len(rewards) - 1
    assert set(rewards[1:-1]) == {1.0}
    assert info["metrics"]["episode_status"] == "Off track"


@pytest.mark.parametrize("bad", [float("nan"), 1e6, "fast", None])
def test_bad_reward_values_fail_clearly(bad: Any) -> None:
    env = DeepRacerEnv(reward_function=lambda params: bad)
    env.reset(seed=0)
    env.step(4)  # prepare: the reward function is not called
    with pytest.raises(RewardFunctionError, match="reward function returned"):
        env.step(4)


def test_time_limit_truncates() -> None:
    env = DeepRacerEnv(world={"episode": {"time_limit": 2.0}})
    env.reset(seed=0)
    # 30 driven steps of 1/15 s reach 2.0 s; the step after them (which sees it) ends the episode
    flags = [env.step(5)[2:4] for _ in range(31)]
    assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])


def test_world_config_selects_track_and_direction() -> None:
    env = DeepRacerEnv(world=WorldConfig(track_id="reInvent2019_track", direction="CLOCKWISE"))
    cw = env.sim.track
    env2 = DeepRacerEnv(world={"track_id": "reInvent2019_track", "direction": "COUNTER_CLOCKWISE"})
    assert cw.is_clockwise and not env2.sim.track.is_clockwise
    env3 = DeepRacerEnv(world={"route_id": "reinvent_base", "reverse": True})
    _, info = env3.reset(seed=0)
    assert info["params"]["is_reversed"] is True


@pytest.mark.parametrize(
    ("world", "match"),
    [
        ({"track_id": "no_such_track"}, "track_id"),
        ({"track_id": "reinvent_base", "direction": "CLOCKWISE"}, "direction"),
        ({"objects": {"race_type": "OBJECT_AVOIDANCE", "number_of_obstacles": 9}}, "number_of_obstacles"),
        ({"objects": {"race_type": "HEAD_TO_BOT", "number_of_bots": 7}}, "number_of_bots"),
        ({"objects": {"race_type": "DRAG_RACE"}}, "race_type"),
        ({"episode": {"mode": "qualifying"}}, "mode"),
        ({"tarck_id": "reinvent_base"}, "unknown field"),
    ],
)
def test_bad_world_config_fails_clearly(world: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DeepRacerEnv(world=world)


# ------------------------------------------------------------------ metadata


@pytest.mark.parametrize(
    "path",
    [
        "utils-sample-model-v3-discrete/model_metadata.json",
        "drfc-run-v4-discrete/model/model_metadata.json",
        "console-v4-lidar-config/model/model_metadata.json",
        "drfc-sac-continuous-v4/model_metadata_sac.json",
        "discrete-496-actions/model_metadata.json",
    ],
)
def test_real_metadata_files_parse(path: str) -> None:
    raw = json.loads((FIXTURES / path).read_text())
    meta = parse_model_metadata(raw)
    if isinstance(raw["action_space"], list):
        assert len(meta.actions) == len(raw["action_space"])
        assert meta.actions[0].steering_angle == float(raw["action_space"][0]["steering_angle"])
    else:
        assert meta.continuous is not None and meta.training_algorithm == "sac"
    assert bool(meta.warnings) == (len(meta.actions) > 30)
    env = DeepRacerEnv(raw)
    n = len(meta.actions)
    assert env.action_space == (gym.spaces.Discrete(n) if n else gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


def test_malformed_real_file_is_rejected() -> None:
    raw = json.loads((FIXTURES / "malformed-discrete-list-continuous-type/model_metadata.json").read_text())
    with pytest.raises(MetadataError, match=r"action_space must be .* continuous"):
        parse_model_metadata(raw)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sensor": ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]}, "exactly one camera"),
        ({"sensor": ["LIDAR"]}, "exactly one camera"),
        ({"sensor": ["FRONT_FACING_CAMERA", "LIDAR", "SECTOR_LIDAR"]}, "at most one"),
        ({"sensor": ["REAR_CAMERA"]}, "REAR_CAMERA.*allowed"),
        ({"neural_network": "RESNET"}, "neural_network.*DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
        ({"training_algorithm": "sac"}, "sac only works with continuous"),
        ({"training_algorithm": "dqn"}, "training_algorithm.*clipped_ppo"),
        ({"action_space": [{"steering_angle": 0, "speed": 1}]}, "at least 2"),
        ({"action_space": [_act(45, 1), _act(0, 1)]}, r"action_space\[0\].steering_angle.*-30"),
        ({"action_space": [_act(0, 9), _act(0, 1)]}, r"action_space\[0\].speed"),
        (
            {"action_space_type": "continuous", "action_space": {"steering_angle": {"low": 10, "high": -10},
                                                                 "speed": {"low": 1, "high": 2}}},
            r"low .* must be below high",
        ),
        ({"action_space_type": "hybrid"}, "action_space_type.*discrete, continuous"),
    ],
)  # fmt: skip
def test_invalid_metadata_names_the_field(change: dict[str, Any], match: str) -> None:
    raw = default_model_metadata()
    raw.update(change)
    with pytest.raises(MetadataError, match=match):
        parse_model_metadata(raw)
    with pytest.raises(MetadataError):
        DeepRacerEnv(raw)


def test_version_defaults() -> None:
    raw = default_model_metadata()
    del raw["version"]
    assert parse_model_metadata(raw).version == "2"
    del raw["sensor"]
    meta = parse_model_metadata(raw)
    assert meta.version == "1" and meta.sensors == ("FRONT_FACING_CAMERA",)


def test_vector_env_steps_many_envs() -> None:
    envs = make_vector_env(3, world={"seed": 5, "episode": EpisodeConfig(max_steps=4)})
    obs, infos = envs.reset(seed=0)
    assert obs["FRONT_FACING_CAMERA"].shape == (3, 120, 160, 1)
    for _ in range(5):  # prepare + 4 driven steps
        obs, rewards, terminated, truncated, infos = envs.step(np.array([4, 5, 6]))
    assert rewards.shape == (3,) and truncated.all() and not terminated.any()
    assert "final_info" in infos
    envs.close()


def test_objects_config_passes_through() -> None:
    env = DeepRacerEnv(world=WorldConfig(objects=ObjectsConfig(race_type="OBJECT_AVOIDANCE", number_of_obstacles=2)))
    _, info = env.reset(seed=0)
    assert len(info["params"]["objects_location"]) == 2


def test_render_returns_the_camera_frame_as_rgb() -> None:
    env = gym.make(ENV_ID, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray)
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[:, :, 2], obs["FRONT_FACING_CAMERA"][:, :, 0])
    check_env(env.unwrapped)
