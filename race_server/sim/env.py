"""Gymnasium env ``Trackside/DeepRacer-v0`` (registered when this module is imported).

Built from a model_metadata dict (action space, sensors), a ``WorldConfig`` (track, direction,
objects, episode rules, seed) and an optional reward callable taking the DeepRacer params dict.

Observations are a ``Dict`` keyed by sensor name:
``FRONT_FACING_CAMERA`` uint8 (120, 160, 1) (channel-last like the network input [1, 120, 160, 1]),
``STEREO_CAMERAS`` uint8 (120, 160, 2), ``LIDAR`` float32 (64,) in [0.15, 1.0] m,
``SECTOR_LIDAR`` float32 (8,) of 0/1, ``DISCRETIZED_SECTOR_LIDAR`` float32 (8 * bins,) one-hot per
sector (bins and clipping distance from the metadata's ``lidar_config``, default 8 and 2.0 m).
Actions: ``Discrete(n)`` over the metadata's actions in index order, or for continuous spaces
``Box(-1, 1, (2,))`` = (steering, speed) scaled linearly to the metadata's bounds.
Episodes that hit the time limit or the step limit are truncated; all other ends are terminations.
Steps follow DeepRacer's order (``stepper.py``): step 1 is ``prepare`` (reward 0, the reward function
is not called), and step k's params are read at the pose the observation of step k showed, paired
with action k. The reward function gets a fresh copy of the params on every call.
``info["params"]`` is the reward-params dict of the step, ``info["metrics"]`` the episode metrics.

Seeds: one seed gives two independent streams (``SeedSequence.spawn``): ``np_random`` for sensor
noise and the simulation's generator for the world (object layouts, bot lane changes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from race_server.sim import camera, lidar
from race_server.sim.episode import PREPARE, EpisodeConfig, Simulation, StepOutcome
from race_server.sim.metadata import ModelMetadata, default_model_metadata, parse_model_metadata
from race_server.sim.objects import Box, ObjectsConfig
from race_server.sim.params import fresh_params
from race_server.sim.stepper import DeepRacerStepper, JudgedStep
from race_server.sim.tracks import Track, load_console_track, resolve_track

REWARD_LIMIT = 1e5

RewardFunction = Callable[[dict[str, Any]], Any]


class RewardFunctionError(RuntimeError):
    """The reward function returned something DeepRacer would reject."""


def centre_line_reward(params: dict[str, Any]) -> float:
    """The guide's example 1: follow the centre line."""
    width = params["track_width"]
    distance = params["distance_from_center"]
    if distance <= 0.1 * width:
        return 1.0
    if distance <= 0.25 * width:
        return 0.5
    if distance <= 0.5 * width:
        return 0.1
    return 1e-3


def checked_reward(value: Any) -> float:
    try:
        reward = float(value)
    except (TypeError, ValueError) as exc:
        raise RewardFunctionError(f"reward function returned {value!r}, which float() rejects") from exc
    if not math.isfinite(reward) or abs(reward) > REWARD_LIMIT:
        raise RewardFunctionError(f"reward function returned {reward!r}; it must be finite and within [-1e5, 1e5]")
    return reward


CAMERA_SHAPE = (120, 160)


class SensorSuite:
    """Renders the metadata's sensors for a car pose; one camera / lidar instance per track."""

    def __init__(
        self, sensors: tuple[str, ...], lidar_config: Mapping[str, float] | None, *, domain_randomization: bool
    ) -> None:
        self.sensors = sensors
        self.lidar_config = lidar_config
        self.domain_randomization = domain_randomization
        self._cameras: dict[tuple[str, str, bool], Any] = {}
        self._lidar = lidar.Lidar()
        config = dict(lidar_config or {})
        sectors = int(config.get("num_sectors", lidar.NUMBER_OF_SECTORS))
        if sectors != lidar.NUMBER_OF_SECTORS:
            raise ValueError(f"lidar_config.num_sectors = {sectors}; allowed: {lidar.NUMBER_OF_SECTORS}")
        self._values_per_sector = int(config.get("num_values_per_sector", lidar.DISCRETIZED_VALUES_PER_SECTOR))
        self._clipping_dist = float(config.get("clipping_dist", lidar.DISCRETIZED_CLIPPING_DIST))
        if self._values_per_sector < 1 or not self._clipping_dist > 0.0:
            raise ValueError(
                "lidar_config: num_values_per_sector must be >= 1 and clipping_dist > 0, "
                f"got {self._values_per_sector}, {self._clipping_dist}"
            )

    def spaces(self) -> dict[str, spaces.Space[Any]]:
        h, w = CAMERA_SHAPE
        out: dict[str, spaces.Space[Any]] = {}
        for name in self.sensors:
            if name == "FRONT_FACING_CAMERA":
                out[name] = spaces.Box(0, 255, shape=(h, w, 1), dtype=np.uint8)
            elif name == "STEREO_CAMERAS":
                out[name] = spaces.Box(0, 255, shape=(h, w, 2), dtype=np.uint8)
            elif name == "LIDAR":
                low, high = lidar.LIDAR_MIN_RANGE, lidar.LIDAR_CLIP
                out[name] = spaces.Box(low, high, shape=(lidar.LIDAR_SAMPLES,), dtype=np.float32)
            elif name == "SECTOR_LIDAR":
                out[name] = spaces.Box(0.0, 1.0, shape=(lidar.NUMBER_OF_SECTORS,), dtype=np.float32)
            else:
                size = lidar.NUMBER_OF_SECTORS * self._values_per_sector
                out[name] = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
        return out

    def _camera(self, track: Track, kind: str) -> Any:
        key = (kind, track.route_id, track.reverse)
        cam = self._cameras.get(key)
        if cam is None:
            cls = camera.StereoCamera if kind == "STEREO_CAMERAS" else camera.Camera
            randomization = (
                camera.DomainRandomization(brightness=0.15, noise_std=3.0, texture_jitter=0.01)
                if self.domain_randomization
                else None
            )
            cam = cls(track, randomization=randomization)
            self._cameras[key] = cam
        return cam

    def observe(
        self, track: Track, x: float, y: float, yaw: float, boxes: Sequence[Box], rng: np.random.Generator
    ) -> dict[str, NDArray[Any]]:
        out: dict[str, NDArray[Any]] = {}
        scan: NDArray[np.float32] | None = None
        for name in self.sensors:
            if name in ("FRONT_FACING_CAMERA", "STEREO_CAMERAS"):
                frame = self._camera(track, name).render(x, y, yaw, boxes, rng=rng)
                out[name] = frame.reshape(*CAMERA_SHAPE, -1)
            else:
                if scan is None:
                    scan = self._lidar.scan(x, y, yaw, boxes, rng)
                if name == "LIDAR":
                    out[name] = lidar.lidar_observation(scan)
                elif name == "SECTOR_LIDAR":
                    out[name] = lidar.sector_lidar(scan)
                else:
                    out[name] = lidar.discretized_sector_lidar(
                        scan, self._values_per_sector, self._clipping_dist
                    ).reshape(-1)
        return out


@dataclass(frozen=True)
class WorldConfig:
    """Which world an env simulates. ``route_id`` (a route file) wins over ``track_id`` + direction."""

    track_id: str = "reinvent_base"
    direction: str | None = None  # CLOCKWISE | COUNTER_CLOCKWISE; None = the track's default
    route_id: str | None = None
    reverse: bool = False
    objects: ObjectsConfig = field(default_factory=ObjectsConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    seed: int | None = None
    domain_randomization: bool = False

    def route(self) -> tuple[str, bool]:
        if self.route_id is not None:
            return self.route_id, self.reverse
        if self.direction is None:
            track = load_console_track(self.track_id)
            return track.route_id, track.reverse
        return resolve_track(self.track_id, self.direction)


def seed_streams(seed: int) -> tuple[np.random.Generator, np.random.SeedSequence]:
    """(sensor-noise generator, world-layout seed) drawn apart from one seed."""
    noise, layout = np.random.SeedSequence(seed).spawn(2)
    return np.random.Generator(np.random.PCG64(noise)), layout


def _world_config(world: WorldConfig | Mapping[str, Any] | None) -> WorldConfig:
    if world is None:
        return WorldConfig()
    if isinstance(world, WorldConfig):
        return world
    raw = dict(world)
    if isinstance(raw.get("objects"), Mapping):
        raw["objects"] = ObjectsConfig(**raw["objects"])
    if isinstance(raw.get("episode"), Mapping):
        raw["episode"] = EpisodeConfig(**raw["episode"])
    allowed = set(WorldConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"world config: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    return WorldConfig(**raw)


class DeepRacerEnv(gym.Env[dict[str, Any], Any]):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        model_metadata: Mapping[str, Any] | None = None,
        world: WorldConfig | Mapping[str, Any] | None = None,
        reward_function: RewardFunction | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode = {render_mode!r}; allowed: None, 'rgb_array'")
        self.render_mode = render_mode
        self.model: ModelMetadata = parse_model_metadata(
            model_metadata if model_metadata is not None else default_model_metadata()
        )
        self.world_config = _world_config(world)
        route_id, reverse = self.world_config.route()
        seed = self.world_config.seed
        self.sim = Simulation(
            route_id,
            reverse,
            objects=self.world_config.objects,
            episode=self.world_config.episode,
            seed=None if seed is None else seed_streams(seed)[1],
        )
        self.stepper = DeepRacerStepper(self.sim)
        self.reward_function: RewardFunction = reward_function or centre_line_reward
        self.sensors = SensorSuite(
            self.model.sensors,
            self.model.lidar_config,
            domain_randomization=self.world_config.domain_randomization,
        )
        self.sim.stereo_camera = "STEREO_CAMERAS" in self.model.sensors
        self.sensor_spaces = self.sensors.spaces()
        self.observation_space = spaces.Dict(self.sensor_spaces)
        self.action_space: spaces.Space[Any]
        if self.model.action_space_type == "discrete":
            self.action_space = spaces.Discrete(len(self.model.actions))
            self._actions = [(a.steering_angle, a.speed) for a in self.model.actions]
        else:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
            self._actions = []
        self._seeded = False
        self._last_obs: dict[str, NDArray[Any]] | None = None

    # ----------------------------------------------------------------- actions
    def action_values(self, action: Any) -> tuple[float, float]:
        """(steering degrees, speed m/s) for an action of this env's action space."""
        if self.model.action_space_type == "discrete":
            index = int(action)
            if not 0 <= index < len(self._actions):
                raise ValueError(f"action index {index} out of range 0..{len(self._actions) - 1}")
            return self._actions[index]
        b = self.model.continuous
        assert b is not None
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        steer = b.steering_low + (float(a[0]) + 1.0) / 2.0 * (b.steering_high - b.steering_low)
        speed = b.speed_low + (float(a[1]) + 1.0) / 2.0 * (b.speed_high - b.speed_low)
        return steer, speed

    # -------------------------------------------------------------------- core
    def _observe(self) -> dict[str, NDArray[Any]]:
        sim = self.sim
        world = sim.world
        assert world is not None
        boxes = sim.track_objects.boxes if sim.track_objects is not None else []
        obs = self.sensors.observe(sim.track, world.x, world.y, world.yaw, boxes, self.np_random)
        self._last_obs = obs
        return obs

    def _info(self, step: JudgedStep) -> dict[str, Any]:
        return {
            "params": step.params,
            "metrics": step.metrics,
            "status": step.status,
            "pause_duration": step.pause_duration,
            "lap_time": step.lap_time,
            "action": (float(step.params["steering_angle"]), float(step.params["speed"])),
        }

    def _seed(self, seed: int) -> None:
        noise, layout = seed_streams(seed)
        self.np_random = noise
        self.sim.seed(layout)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            # a seeded reset restarts both generators and the start-position schedule
            self._seed(seed)
            self.sim.episode_index = -1
        elif not self._seeded and self.world_config.seed is not None:
            self._seed(self.world_config.seed)
        self._seeded = True
        outcome: StepOutcome = self.stepper.reset()
        info = {
            "params": outcome.params,
            "metrics": self.sim.metrics.as_dict(),
            "status": PREPARE,
            "pause_duration": 0.0,
            "lap_time": None,
            "action": (0.0, 0.0),
        }
        return self._observe(), info

    def step(self, action: Any) -> tuple[dict[str, NDArray[Any]], SupportsFloat, bool, bool, dict[str, Any]]:
        steering, speed = self.action_values(action)
        judged = self.stepper.step(steering, speed)
        reward = checked_reward(self.reward_function(fresh_params(judged.params))) if judged.rewarded else 0.0
        ended = judged.terminated or judged.truncated
        # an ending step drives nothing: the car still stands where the last observation showed it
        obs = self._last_obs if ended and self._last_obs is not None else self._observe()
        return obs, reward, judged.terminated, judged.truncated, self._info(judged)

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode != "rgb_array":
            return None
        if self._last_obs is None:
            raise RuntimeError("call reset() before render()")
        cam = self._last_obs[self.model.camera]
        return np.repeat(cam[:, :, :1], 3, axis=2)


def make_env(
    model_metadata: Mapping[str, Any] | None = None,
    world: WorldConfig | Mapping[str, Any] | None = None,
    reward_function: RewardFunction | None = None,
) -> DeepRacerEnv:
    return DeepRacerEnv(model_metadata, world, reward_function)
