"""``model_metadata.json`` parsing for the simulator: action space and sensors.

Pure and strict: every rejection is a ``MetadataError`` naming the field and the allowed values.
Discrete spaces larger than the console's 30 actions occur in real files; they are accepted and
reported in ``ModelMetadata.warnings``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CAMERAS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS")
LIDARS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")
NETWORKS = (
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "DEEP_CONVOLUTIONAL_NETWORK",
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP",
)
ALGORITHMS = ("clipped_ppo", "sac")
ACTION_SPACE_TYPES = ("discrete", "continuous")
STEERING_RANGE = (-30.0, 30.0)
SPEED_RANGE = (0.1, 4.0)
CONSOLE_MAX_ACTIONS = 30


class MetadataError(ValueError):
    """Invalid model_metadata; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Action:
    steering_angle: float  # degrees, left positive
    speed: float  # m/s


@dataclass(frozen=True)
class ContinuousBounds:
    steering_low: float
    steering_high: float
    speed_low: float
    speed_high: float


@dataclass(frozen=True)
class ModelMetadata:
    action_space_type: str
    actions: tuple[Action, ...]  # discrete actions in index order; empty when continuous
    continuous: ContinuousBounds | None
    sensors: tuple[str, ...]  # camera first, then the lidar if any
    neural_network: str
    training_algorithm: str
    version: str
    lidar_config: Mapping[str, float] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def camera(self) -> str:
        return self.sensors[0]

    @property
    def lidar(self) -> str | None:
        return self.sensors[1] if len(self.sensors) > 1 else None


def default_model_metadata() -> dict[str, Any]:
    """The console default: front camera, SHALLOW, PPO, steering -30..30 x speed 0.5/1.0."""
    actions = [
        {"steering_angle": float(s), "speed": v, "index": i}
        for i, (s, v) in enumerate((s, v) for s in (-30, -15, 0, 15, 30) for v in (0.5, 1.0))
    ]
    return {
        "action_space": actions,
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetadataError(f"{field} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise MetadataError(f"{field} must be finite, got {value!r}")
    return out


def _in_range(value: float, field: str, bounds: tuple[float, float]) -> float:
    if not bounds[0] <= value <= bounds[1]:
        raise MetadataError(f"{field} = {value} is out of range; allowed {bounds[0]}..{bounds[1]}")
    return value


def _choice(raw: Mapping[str, Any], field: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(field, default)
    if value not in allowed:
        raise MetadataError(f"{field} = {value!r} is not supported; allowed: {', '.join(allowed)}")
    return str(value)


def _parse_sensors(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("sensor", ["FRONT_FACING_CAMERA"])
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise MetadataError(f"sensor must be a non-empty list of sensor names, got {value!r}")
    allowed = CAMERAS + LIDARS
    for name in value:
        if name not in allowed:
            raise MetadataError(f"sensor {name!r} is not supported; allowed: {', '.join(allowed)}")
    cams = [s for s in value if s in CAMERAS]
    lidars = [s for s in value if s in LIDARS]
    if len(cams) != 1:
        raise MetadataError(f"sensor must hold exactly one camera ({' or '.join(CAMERAS)}), got {value!r}")
    if len(lidars) > 1:
        raise MetadataError(f"sensor may hold at most one of {', '.join(LIDARS)}, got {value!r}")
    if len(set(value)) != len(value):
        raise MetadataError(f"sensor lists a sensor twice: {value!r}")
    return (cams[0], *lidars)


def _parse_discrete(space: Any) -> tuple[tuple[Action, ...], tuple[str, ...]]:
    if not isinstance(space, list):
        raise MetadataError("action_space must be a list of {steering_angle, speed} for action_space_type discrete")
    if len(space) < 2:
        raise MetadataError(f"action_space must hold at least 2 actions, got {len(space)}")
    entries: list[tuple[int, Action]] = []
    for i, item in enumerate(space):
        field = f"action_space[{i}]"
        if not isinstance(item, Mapping) or "steering_angle" not in item or "speed" not in item:
            raise MetadataError(f"{field} must be an object with steering_angle and speed, got {item!r}")
        steer_field, speed_field = f"{field}.steering_angle", f"{field}.speed"
        steer = _in_range(_number(item["steering_angle"], steer_field), steer_field, STEERING_RANGE)
        speed = _in_range(_number(item["speed"], speed_field), speed_field, SPEED_RANGE)
        index = item.get("index", i)
        if isinstance(index, bool) or not isinstance(index, int):
            raise MetadataError(f"{field}.index must be an integer, got {index!r}")
        entries.append((index, Action(steer, speed)))
    indices = sorted(i for i, _ in entries)
    if indices != list(range(len(entries))):
        raise MetadataError(f"action_space indices must be 0..{len(entries) - 1}, each once")
    warnings: tuple[str, ...] = ()
    if len(entries) > CONSOLE_MAX_ACTIONS:
        warnings = (
            f"action_space has {len(entries)} actions; the DeepRacer console allows at most {CONSOLE_MAX_ACTIONS}",
        )
    return tuple(a for _, a in sorted(entries, key=lambda e: e[0])), warnings


def _bounds(space: Mapping[str, Any], key: str, allowed: tuple[float, float]) -> tuple[float, float]:
    item = space.get(key)
    if not isinstance(item, Mapping) or "low" not in item or "high" not in item:
        raise MetadataError(f"action_space.{key} must be an object with low and high")
    low = _in_range(_number(item["low"], f"action_space.{key}.low"), f"action_space.{key}.low", allowed)
    high = _in_range(_number(item["high"], f"action_space.{key}.high"), f"action_space.{key}.high", allowed)
    if low >= high:
        raise MetadataError(f"action_space.{key}: low ({low}) must be below high ({high})")
    return low, high


def parse_model_metadata(raw: Mapping[str, Any]) -> ModelMetadata:
    """Validate a parsed model_metadata.json object."""
    if not isinstance(raw, Mapping):
        raise MetadataError("model_metadata must be a JSON object")
    if "action_space" not in raw:
        raise MetadataError("action_space is missing")
    space = raw["action_space"]
    inferred = "continuous" if isinstance(space, Mapping) else "discrete"
    kind = _choice(raw, "action_space_type", ACTION_SPACE_TYPES, inferred)
    algorithm = _choice(raw, "training_algorithm", ALGORITHMS, "clipped_ppo")
    network = _choice(raw, "neural_network", NETWORKS, NETWORKS[0])
    sensors = _parse_sensors(raw)
    # files without a version: 2 if they name sensors (added in version 2), else 1
    default_version = "2" if "sensor" in raw else "1"
    version = str(raw.get("version", default_version))
    actions: tuple[Action, ...] = ()
    continuous: ContinuousBounds | None = None
    warnings: tuple[str, ...] = ()
    if kind == "discrete":
        if algorithm == "sac":
            raise MetadataError("training_algorithm sac only works with continuous action space")
        actions, warnings = _parse_discrete(space)
    else:
        if not isinstance(space, Mapping):
            raise MetadataError(
                "action_space must be {steering_angle: {low, high}, speed: {low, high}} "
                "for action_space_type continuous (got a list)"
            )
        s_low, s_high = _bounds(space, "steering_angle", STEERING_RANGE)
        v_low, v_high = _bounds(space, "speed", SPEED_RANGE)
        continuous = ContinuousBounds(s_low, s_high, v_low, v_high)
    lidar_config = raw.get("lidar_config")
    if lidar_config is not None and not isinstance(lidar_config, Mapping):
        raise MetadataError("lidar_config must be an object")
    return ModelMetadata(
        action_space_type=kind,
        actions=actions,
        continuous=continuous,
        sensors=sensors,
        neural_network=network,
        training_algorithm=algorithm,
        version=version,
        lidar_config=dict(lidar_config) if lidar_config is not None else None,
        warnings=warnings,
    )
