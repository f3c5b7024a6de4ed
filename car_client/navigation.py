"""From a model's action to servo commands, as the stock car's navigation node does it (pure).

A model's action is (steering angle in degrees, speed in m/s). The car turns it into two servo
commands in −1..1 (``calibration.ServoCalibration.pulse_ns`` makes pulses of them):

- steering = angle / max_angle, where max_angle is the largest |steering_angle| of the action
  space (discrete) or of its bounds (continuous); clipped to −1..1.
- throttle: the stock quadratic through (0, 0), (max_speed / 2, 0.8) and (max_speed, 1), where
  max_speed is the action space's largest speed: throttle(s) = a·s² + b·s with
  a = −0.4 / (max_speed/2)², b = 2.6 / max_speed (solving the two equations), clipped to 0..1,
  then multiplied by the car's max-speed percentage (0..1, "Maximum speed" on the stock console).
- continuous outputs arrive in −1..1 and are first rescaled linearly onto the bounds:
  value = low + (out + 1) / 2 × (high − low).
- Trackside adds the racer's speed multiplier (0.5..2, LIVE speed control): it multiplies the
  model's speed before the quadratic, as the simulator multiplies the commanded speed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STOCK_SPEED_POINT = 0.8  # throttle at half the action space's top speed


class ModelError(ValueError):
    """A model the car cannot drive with; the message says why (refused before arming)."""


@dataclass(frozen=True)
class ActionSpace:
    kind: str  # "discrete" | "continuous"
    actions: tuple[tuple[float, float], ...]  # discrete (steering deg, speed m/s), index order
    steering_bounds: tuple[float, float] = (-30.0, 30.0)  # continuous
    speed_bounds: tuple[float, float] = (0.5, 1.0)
    sensor: str = "FRONT_FACING_CAMERA"

    @property
    def max_angle(self) -> float:
        if self.kind == "discrete":
            return max(abs(a) for a, _ in self.actions) or 1.0
        return max(abs(self.steering_bounds[0]), abs(self.steering_bounds[1])) or 1.0

    @property
    def max_speed(self) -> float:
        if self.kind == "discrete":
            return max(s for _, s in self.actions)
        return self.speed_bounds[1]

    @property
    def outputs(self) -> int:
        return len(self.actions) if self.kind == "discrete" else 2


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"model_metadata.json: {where}: {value!r} is not a number")
    return float(value)


def parse_action_space(metadata: Mapping[str, Any]) -> ActionSpace:
    """The action space and camera of a model_metadata.json (what the car needs of it)."""
    sensors = metadata.get("sensor", ["FRONT_FACING_CAMERA"])
    if not isinstance(sensors, list) or not sensors:
        raise ModelError("model_metadata.json: sensor must be a non-empty list")
    cameras = [s for s in sensors if s in ("FRONT_FACING_CAMERA", "STEREO_CAMERAS")]
    others = [s for s in sensors if s not in cameras]
    if len(cameras) != 1 or others:
        raise ModelError(
            f"model_metadata.json: sensor {sensors!r}; this car drives with exactly one camera "
            "(FRONT_FACING_CAMERA or STEREO_CAMERAS) and no lidar"
        )
    kind = metadata.get("action_space_type", "discrete")
    space = metadata.get("action_space")
    if kind == "discrete":
        if not isinstance(space, list) or not space:
            raise ModelError("model_metadata.json: action_space must be a non-empty list for a discrete model")
        actions = []
        for i, action in enumerate(space):
            if not isinstance(action, dict):
                raise ModelError(f"model_metadata.json: action_space[{i}] must be an object")
            angle = _number(action.get("steering_angle"), f"action_space[{i}].steering_angle")
            speed = _number(action.get("speed"), f"action_space[{i}].speed")
            if speed < 0:
                raise ModelError(f"model_metadata.json: action_space[{i}].speed {speed} is negative")
            actions.append((angle, speed))
        if max(s for _, s in actions) <= 0:
            raise ModelError("model_metadata.json: every action has speed 0; the car could not move")
        return ActionSpace("discrete", tuple(actions), sensor=cameras[0])
    if kind == "continuous":
        if not isinstance(space, dict) or "steering_angle" not in space or "speed" not in space:
            raise ModelError("model_metadata.json: a continuous action_space needs steering_angle and speed bounds")
        bounds = []
        for key in ("steering_angle", "speed"):
            item = space[key]
            if not isinstance(item, dict):
                raise ModelError(f"model_metadata.json: action_space.{key} must be {{low, high}}")
            low = _number(item.get("low"), f"action_space.{key}.low")
            high = _number(item.get("high"), f"action_space.{key}.high")
            if not high > low:
                raise ModelError(f"model_metadata.json: action_space.{key}: high must be greater than low")
            bounds.append((low, high))
        if bounds[1][1] <= 0:
            raise ModelError("model_metadata.json: action_space.speed.high must be above 0")
        return ActionSpace("continuous", (), bounds[0], bounds[1], sensor=cameras[0])
    raise ModelError(f"model_metadata.json: action_space_type {kind!r}; allowed values: discrete, continuous")


def speed_coefficients(max_speed: float) -> tuple[float, float]:
    """(a, b) of throttle = a·s² + b·s through (0,0), (max/2, 0.8), (max, 1)."""
    if not max_speed > 0:
        raise ModelError(f"max speed {max_speed!r}; must be above 0")
    half = max_speed / 2.0
    # a·h² + b·h = 0.8 and a·4h² + 2b·h = 1  ⇒  a = (1 − 1.6) / (2h²), b = (0.8 − a·h²) / h
    a = (1.0 - 2.0 * STOCK_SPEED_POINT) / (2.0 * half * half)
    b = (STOCK_SPEED_POINT - a * half * half) / half
    return a, b


def throttle_for_speed(speed: float, max_speed: float, max_speed_pct: float) -> float:
    a, b = speed_coefficients(max_speed)
    throttle = min(max(a * speed * speed + b * speed, 0.0), 1.0)
    return throttle * min(max(max_speed_pct, 0.0), 1.0)


def steering_for_angle(angle: float, max_angle: float) -> float:
    return min(max(angle / max_angle, -1.0), 1.0)


def rescale(value: float, low: float, high: float) -> float:
    """A continuous output in −1..1 onto [low, high]."""
    clipped = min(max(value, -1.0), 1.0)
    return low + (clipped + 1.0) / 2.0 * (high - low)


@dataclass(frozen=True)
class Command:
    action: int | None  # the discrete action index (None for continuous)
    angle: float  # the model's steering, degrees
    speed: float  # the model's speed, m/s (before the multiplier)
    steering: float  # servo command −1..1
    throttle: float  # servo command 0..1


def map_output(
    space: ActionSpace, output: Sequence[float], *, max_speed_pct: float, multiplier: float = 1.0
) -> Command:
    """The servo command for one network output row (probabilities or continuous means)."""
    row = [float(v) for v in output]
    if len(row) != space.outputs:
        raise ModelError(f"the model gave {len(row)} outputs; its action space needs {space.outputs}")
    if not all(math.isfinite(v) for v in row):
        raise ModelError("the model produced a non-finite output")
    action: int | None
    if space.kind == "discrete":
        action = max(range(len(row)), key=row.__getitem__)
        angle, speed = space.actions[action]
    else:
        action = None
        angle = rescale(row[0], *space.steering_bounds)
        speed = rescale(row[1], *space.speed_bounds)
    throttle = throttle_for_speed(speed * multiplier, space.max_speed, max_speed_pct)
    return Command(action, angle, speed, steering_for_angle(angle, space.max_angle), throttle)
