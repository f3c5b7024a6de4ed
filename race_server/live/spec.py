"""What a RaceHost is asked to run: the racer's driver and the run's rules (plain, picklable data).

These cross the process boundary to the simulator child, so they hold only plain values.
``check_multiplier`` is the one place the speed-control slider's values are decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SPEED_MULTIPLIER_MIN = 0.5
SPEED_MULTIPLIER_MAX = 2.0
SPEED_MULTIPLIER_STEP = 0.05
SIM_SPEED_MIN = 0.1  # m/s, the simulator's speed range: a multiplied speed is clamped into it
SIM_SPEED_MAX = 4.0

RunEndReason = Literal["time_up", "run_failed", "interrupted", "aborted"]
RUN_END_REASONS: tuple[RunEndReason, ...] = ("time_up", "run_failed", "interrupted", "aborted")


@dataclass(frozen=True)
class DriverSpec:
    """Who drives: a racer's ONNX model, or the built-in geometric driver (house / demo racers)."""

    kind: Literal["onnx", "reference"]
    onnx_path: Path | None = None  # the model's model.onnx
    model_metadata: dict[str, Any] | None = None  # its model_metadata.json (action space, sensors)
    reference_speed: float = 1.5  # m/s target for the reference driver
    # The model's reward_function.py source: the run's telemetry then carries each step's reward
    # params, scored after the run (race_server.queue.run_rewards). None: no reward, logged as 0.
    reward_function: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("onnx", "reference"):
            raise ValueError(f"kind: {self.kind!r}; allowed values: onnx, reference")
        if self.kind == "onnx" and (self.onnx_path is None or self.model_metadata is None):
            raise ValueError("an onnx driver needs onnx_path and model_metadata")
        if self.kind == "reference" and self.reward_function is not None:
            raise ValueError("a reference driver has no reward function")
        if not SIM_SPEED_MIN <= self.reference_speed <= SIM_SPEED_MAX:
            raise ValueError(
                f"reference_speed: {self.reference_speed!r}; allowed values: {SIM_SPEED_MIN} to {SIM_SPEED_MAX} m/s"
            )


@dataclass(frozen=True)
class RunSpec:
    """One racer's slot on the LIVE track."""

    race_id: int
    run_id: int
    racer_id: int
    route_id: str
    reverse: bool
    objects: dict[str, Any]  # ObjectsConfig fields (race_server.sim.objects)
    driver: DriverSpec
    slot_s: float  # time per racer
    countdown_s: float = 10.0
    off_track_penalty_s: float = 3.0
    collision_penalty_s: float = 3.0
    resets: Literal["unlimited", "none"] = "unlimited"
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slot_s) and self.slot_s > 0):
            raise ValueError(f"slot_s: {self.slot_s!r}; allowed values: > 0 seconds")
        if not (math.isfinite(self.countdown_s) and self.countdown_s >= 0):
            raise ValueError(f"countdown_s: {self.countdown_s!r}; allowed values: >= 0 seconds")
        for name in ("off_track_penalty_s", "collision_penalty_s"):
            value = getattr(self, name)
            if not 0.0 <= value <= 30.0:
                raise ValueError(f"{name}: {value!r}; allowed values: 0 to 30 seconds")
        if self.resets not in ("unlimited", "none"):
            raise ValueError(f"resets: {self.resets!r}; allowed values: unlimited, none")
        for name in ("race_id", "run_id", "racer_id"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)!r}; allowed values: 1 or more")


def check_multiplier(multiplier: float) -> float:
    """The slider value ``multiplier`` snapped to its 0.05 step, or ValueError if it is off the slider."""
    steps = (multiplier - SPEED_MULTIPLIER_MIN) / SPEED_MULTIPLIER_STEP if math.isfinite(multiplier) else math.nan
    if (
        not math.isfinite(steps)
        or not SPEED_MULTIPLIER_MIN - 1e-9 <= multiplier <= SPEED_MULTIPLIER_MAX + 1e-9
        or abs(steps - round(steps)) > 1e-6
    ):
        raise ValueError(
            f"speed multiplier {multiplier!r} is not on the slider; allowed values: "
            f"{SPEED_MULTIPLIER_MIN} to {SPEED_MULTIPLIER_MAX} in steps of {SPEED_MULTIPLIER_STEP}"
        )
    return round(SPEED_MULTIPLIER_MIN + round(steps) * SPEED_MULTIPLIER_STEP, 2)


def applied_speed(policy_speed: float, multiplier: float) -> float:
    """The speed the car is commanded: the model's speed times the multiplier, in the sim's range."""
    return min(max(policy_speed * multiplier, SIM_SPEED_MIN), SIM_SPEED_MAX)
