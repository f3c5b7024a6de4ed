"""Training job inputs besides the model files: world (track, direction, race type), stop conditions,
and the clone-from compatibility check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from race_server.sim.env import WorldConfig
from race_server.sim.episode import EpisodeConfig
from race_server.sim.metadata import ModelMetadata
from race_server.sim.objects import ObjectsConfig
from race_server.sim.tracks import list_tracks

DIRECTIONS = {
    "cw": "CLOCKWISE",
    "ccw": "COUNTER_CLOCKWISE",
    "clockwise": "CLOCKWISE",
    "counter_clockwise": "COUNTER_CLOCKWISE",
}
RACE_TYPES = {"time_trial": "TIME_TRIAL", "object_avoidance": "OBJECT_AVOIDANCE", "head_to_bot": "HEAD_TO_BOT"}


class ConfigError(ValueError):
    """A training or evaluation option is invalid; the message names it and what is allowed."""


class CloneError(ConfigError):
    """The clone-from model is not compatible with the new model's metadata."""


def direction_name(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip().lower()
    if key not in DIRECTIONS:
        raise ConfigError(f"direction = {value!r}; allowed: cw, ccw")
    return DIRECTIONS[key]


def race_type_name(value: str) -> str:
    key = value.strip().lower()
    if key not in RACE_TYPES and value not in RACE_TYPES.values():
        raise ConfigError(f"race type = {value!r}; allowed: {', '.join(RACE_TYPES)}")
    return RACE_TYPES.get(key, value)


@dataclass(frozen=True)
class TrainWorld:
    """The console's environment + race-type choices for a training job."""

    track_id: str = "reinvent_base"
    direction: str | None = None  # CLOCKWISE | COUNTER_CLOCKWISE | None (track default)
    alternate_direction: bool = False
    race_type: str = "TIME_TRIAL"
    number_of_obstacles: int = 0
    randomize_obstacle_locations: bool = False
    number_of_bots: int = 0
    bot_speed: float = 0.2
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0
    upper_lane_change_time: float = 5.0

    def objects(self) -> ObjectsConfig:
        try:
            return ObjectsConfig(
                race_type=self.race_type,
                number_of_obstacles=self.number_of_obstacles if self.race_type == "OBJECT_AVOIDANCE" else 0,
                randomize_obstacle_locations=self.randomize_obstacle_locations,
                number_of_bots=self.number_of_bots if self.race_type == "HEAD_TO_BOT" else 0,
                bot_speed=self.bot_speed,
                is_lane_change=self.is_lane_change,
                lower_lane_change_time=self.lower_lane_change_time,
                upper_lane_change_time=self.upper_lane_change_time,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def validate(self) -> None:
        try:
            WorldConfig(track_id=self.track_id, direction=self.direction).route()
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ConfigError(f"track {self.track_id!r} / direction {self.direction!r}: {exc}") from exc
        self.objects()

    def world_config(self, episode: EpisodeConfig, seed: int | None = None) -> WorldConfig:
        return WorldConfig(
            track_id=self.track_id,
            direction=self.direction,
            objects=self.objects(),
            episode=episode,
            seed=seed,
        )

    def training_params(self, model_name: str) -> dict[str, Any]:
        """``training_params.yaml`` content in the DeepRacer simapp's key names."""
        defaults = {t.track_id: t.default_direction for t in list_tracks()}
        direction = self.direction or defaults.get(self.track_id, "COUNTER_CLOCKWISE")
        return {
            "MODEL_NAME": model_name,
            "WORLD_NAME": self.track_id,
            "TRACK_DIRECTION": direction,
            "ALTERNATE_DRIVING_DIRECTION": self.alternate_direction,
            "RACE_TYPE": self.race_type,
            "NUMBER_OF_OBSTACLES": self.number_of_obstacles,
            "RANDOMIZE_OBSTACLE_LOCATIONS": self.randomize_obstacle_locations,
            "NUMBER_OF_BOT_CARS": self.number_of_bots,
            "BOT_CAR_SPEED": self.bot_speed,
            "IS_LANE_CHANGE": self.is_lane_change,
            "LOWER_LANE_CHANGE_TIME": self.lower_lane_change_time,
            "UPPER_LANE_CHANGE_TIME": self.upper_lane_change_time,
            "CAR_NAME": model_name,
            "NUMBER_OF_RESETS": 0,
            "SAVED_MODEL_PATH": "model",
            "METRICS_PATH": "metrics/training",
            "SIMTRACE_PATH": "training-simtrace",
        }

    @classmethod
    def from_training_params(cls, raw: dict[str, Any]) -> TrainWorld:
        return cls(
            track_id=str(raw.get("WORLD_NAME", "reinvent_base")),
            direction=raw.get("TRACK_DIRECTION"),
            alternate_direction=bool(raw.get("ALTERNATE_DRIVING_DIRECTION", False)),
            race_type=str(raw.get("RACE_TYPE", "TIME_TRIAL")),
            number_of_obstacles=int(raw.get("NUMBER_OF_OBSTACLES", 0)),
            randomize_obstacle_locations=bool(raw.get("RANDOMIZE_OBSTACLE_LOCATIONS", False)),
            number_of_bots=int(raw.get("NUMBER_OF_BOT_CARS", 0)),
            bot_speed=float(raw.get("BOT_CAR_SPEED", 0.2)),
            is_lane_change=bool(raw.get("IS_LANE_CHANGE", False)),
            lower_lane_change_time=float(raw.get("LOWER_LANE_CHANGE_TIME", 3.0)),
            upper_lane_change_time=float(raw.get("UPPER_LANE_CHANGE_TIME", 5.0)),
        )


@dataclass(frozen=True)
class StopConditions:
    max_minutes: float | None = None
    max_episodes: int | None = None

    def __post_init__(self) -> None:
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max minutes = {self.max_minutes}; allowed: > 0")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ConfigError(f"max episodes = {self.max_episodes}; allowed: >= 1")


def check_clone(parent: ModelMetadata, child: ModelMetadata) -> None:
    """A clone keeps the action-space type and size and the sensors (the weights must fit)."""
    if parent.action_space_type != child.action_space_type:
        raise CloneError(
            f"clone-from model has a {parent.action_space_type} action space; this model's is "
            f"{child.action_space_type}: they must match"
        )
    if len(parent.actions) != len(child.actions):
        raise CloneError(
            f"clone-from model has {len(parent.actions)} actions; this model has {len(child.actions)}: they must match"
        )
    if parent.sensors != child.sensors:
        raise CloneError(
            f"clone-from model's sensors {list(parent.sensors)} differ from this model's {list(child.sensors)}"
        )
    if parent.neural_network != child.neural_network:
        raise CloneError(
            f"clone-from model's neural_network {parent.neural_network} differs from "
            f"this model's {child.neural_network}"
        )
    if parent.training_algorithm != child.training_algorithm:
        raise CloneError(
            f"clone-from model was trained with {parent.training_algorithm}; this model uses {child.training_algorithm}"
        )
