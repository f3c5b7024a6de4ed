"""``hyperparameters.json`` parsing and validation with the DeepRacer console's ranges and defaults.

Pure: every rejection is a ``HyperparameterError`` naming the key, the value and the allowed range.
Keys the console accepts but Trackside does not use (exploration settings, termination conditions)
are kept and reported in ``Hyperparameters.unused``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

BATCH_SIZES = (32, 64, 128, 256, 512)
LOSS_TYPES = ("huber", "mean squared error")
ALGORITHMS = ("clipped_ppo", "sac")
# key -> (low, high) inclusive
RANGES: dict[str, tuple[float, float]] = {
    "num_epochs": (3, 10),
    "lr": (1e-8, 1e-3),
    "beta_entropy": (0.0, 1.0),
    "discount_factor": (0.0, 1.0),
    "sac_alpha": (0.0, 1.0),
    "num_episodes_between_training": (5, 100),
    "stack_size": (1, 1),
}
INTEGER_KEYS = frozenset({"batch_size", "num_epochs", "num_episodes_between_training", "stack_size"})
UNUSED_KEYS = ("exploration_type", "e_greedy_value", "epsilon_steps", "term_cond_max_episodes", "term_cond_avg_score")


class HyperparameterError(ValueError):
    """Invalid hyperparameters.json; the message names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"hyperparameters.json: {key} = {value!r} is not allowed; allowed: {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True)
class Hyperparameters:
    batch_size: int = 64
    num_epochs: int = 10
    lr: float = 3e-4
    beta_entropy: float = 0.01
    discount_factor: float = 0.999
    loss_type: str = "huber"
    num_episodes_between_training: int = 20
    sac_alpha: float = 0.2
    stack_size: int = 1
    unused: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The file's content: known keys, then the kept unused ones."""
        out = asdict(self)
        unused = out.pop("unused")
        out.update(unused)
        return out


def _number(key: str, value: Any, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HyperparameterError(key, value, "an integer" if integer else "a number")
    if not math.isfinite(float(value)):
        raise HyperparameterError(key, value, "a finite number")
    if integer and float(value) != int(value):
        raise HyperparameterError(key, value, "an integer")
    return float(value)


def _range_text(key: str, low: float, high: float) -> str:
    return f"{low:g}..{high:g}" if low != high else f"{low:g}"


def parse_hyperparameters(raw: Mapping[str, Any], algorithm: str = "clipped_ppo") -> Hyperparameters:
    """Validate a parsed hyperparameters.json; missing keys take the console's defaults."""
    if not isinstance(raw, Mapping):
        raise HyperparameterError("hyperparameters", raw, "a JSON object")
    if algorithm not in ALGORITHMS:
        raise HyperparameterError("training_algorithm", algorithm, " | ".join(ALGORITHMS))
    defaults = Hyperparameters()
    values: dict[str, Any] = {}
    unused: dict[str, Any] = {}
    for key, value in raw.items():
        if key in UNUSED_KEYS:
            unused[key] = value
        elif key == "batch_size":
            number = _number(key, value, True)
            if int(number) not in BATCH_SIZES:
                raise HyperparameterError(key, value, " | ".join(str(b) for b in BATCH_SIZES))
            values[key] = int(number)
        elif key == "loss_type":
            if value not in LOSS_TYPES:
                raise HyperparameterError(key, value, " | ".join(LOSS_TYPES))
            values[key] = value
        elif key in RANGES:
            integer = key in INTEGER_KEYS
            number = _number(key, value, integer)
            low, high = RANGES[key]
            if key == "num_episodes_between_training" and algorithm == "sac":
                if number != 1:
                    raise HyperparameterError(key, value, "1 (SAC trains after every episode)")
            elif not low <= number <= high:
                raise HyperparameterError(key, value, _range_text(key, low, high))
            values[key] = int(number) if integer else number
        else:
            allowed = sorted([*RANGES, "batch_size", "loss_type", *UNUSED_KEYS])
            raise HyperparameterError(key, value, "a known key: " + ", ".join(allowed))
    if algorithm == "sac" and "num_episodes_between_training" not in values:
        values["num_episodes_between_training"] = 1
    return Hyperparameters(**{**asdict(defaults), **values, "unused": unused})


def unused_report(hp: Hyperparameters, algorithm: str) -> list[str]:
    """Human-readable notes on keys that are kept but do not influence training."""
    notes = [f"{key} = {value!r} is kept but not used by Trackside" for key, value in hp.unused.items()]
    if algorithm == "clipped_ppo" and hp.sac_alpha != Hyperparameters.sac_alpha:
        notes.append("sac_alpha is not used by clipped_ppo")
    return notes
