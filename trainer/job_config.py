"""Training and evaluation job configs: validated at the API edge, stored as plain JSON, re-read by
the job's process. Every rejection is a ``JobConfigError`` naming the field (dotted path)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from race_server.models.hyperparameters import HyperparameterError, Hyperparameters, parse_hyperparameters
from race_server.sim.metadata import MetadataError, default_model_metadata, parse_model_metadata
from trainer.config import ConfigError, StopConditions, TrainWorld, direction_name, race_type_name
from trainer.reward_validate import check_source

if TYPE_CHECKING:
    from trainer.evaluation import EvaluationSettings

NAME = re.compile(r"^[a-zA-Z0-9-]{1,63}$")
DEFAULT_MAX_MINUTES = 60.0  # the console's default stop condition
MAX_WORKERS = 8
MAX_ENVS_PER_WORKER = 16
MAX_TRIALS = 10  # as trainer.evaluation.EvaluationSettings


class JobConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise JobConfigError(key, "must be a JSON object")
    return value


def _typed(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise JobConfigError(f"{where}.{key}", f"must be a {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise JobConfigError(f"{where}.{key}", f"must be a {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def _unknown(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        prefix = f"{where}." if where else ""
        raise JobConfigError(f"{prefix}{extra[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _name(raw: dict[str, Any], default: str | None = None) -> str:
    name = raw.get("name", default)
    if not isinstance(name, str) or not NAME.match(name):
        raise JobConfigError("name", "must be 1-63 letters, digits or '-'")
    return name


def parse_world(raw: dict[str, Any]) -> TrainWorld:
    """The world options of ``trackside train`` as JSON (``direction``: cw | ccw | null)."""
    types: dict[str, type | tuple[type, ...]] = {
        "track_id": str,
        "direction": str,
        "alternate_direction": bool,
        "race_type": str,
        "number_of_obstacles": int,
        "randomize_obstacle_locations": bool,
        "number_of_bots": int,
        "bot_speed": (int, float),
        "is_lane_change": bool,
        "lower_lane_change_time": (int, float),
        "upper_lane_change_time": (int, float),
    }
    _unknown(raw, set(types), "world")
    values: dict[str, Any] = {}
    for key, kind in types.items():
        if raw.get(key) is not None:
            values[key] = _typed(raw, key, kind, "world")
    try:
        if "direction" in values:
            values["direction"] = direction_name(values["direction"])
        if "race_type" in values:
            values["race_type"] = race_type_name(values["race_type"])
        world = TrainWorld(**values)
        world.validate()
    except ConfigError as exc:
        raise JobConfigError("world", str(exc)) from None
    return world


def world_json(world: TrainWorld) -> dict[str, Any]:
    return asdict(world)


@dataclass(frozen=True)
class RunOptions:
    workers: int = 2
    envs_per_worker: int = 4
    seed: int = 0


def _options(raw: dict[str, Any]) -> RunOptions:
    _unknown(raw, {f.name for f in fields(RunOptions)}, "options")
    values = {
        k: _typed(raw, k, int, "options") for k in ("workers", "envs_per_worker", "seed") if raw.get(k) is not None
    }
    opts = RunOptions(**values)
    if not 0 <= opts.workers <= MAX_WORKERS:
        raise JobConfigError("options.workers", f"= {opts.workers}; allowed: 0..{MAX_WORKERS}")
    if not 1 <= opts.envs_per_worker <= MAX_ENVS_PER_WORKER:
        raise JobConfigError("options.envs_per_worker", f"= {opts.envs_per_worker}; allowed: 1..{MAX_ENVS_PER_WORKER}")
    return opts


@dataclass(frozen=True)
class TrainingSpec:
    name: str
    model_metadata: dict[str, Any]
    hyperparameters: Hyperparameters
    reward_function: str
    world: TrainWorld
    stop: StopConditions
    options: RunOptions
    clone_from_job_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "training",
            "name": self.name,
            "model_metadata": self.model_metadata,
            "hyperparameters": self.hyperparameters.to_json(),
            "reward_function": self.reward_function,
            "world": world_json(self.world),
            "stop": {"max_minutes": self.stop.max_minutes, "max_episodes": self.stop.max_episodes},
            "options": asdict(self.options),
            "clone_from_job_id": self.clone_from_job_id,
        }


TRAINING_KEYS = {
    "kind",
    "name",
    "model_metadata",
    "hyperparameters",
    "reward_function",
    "world",
    "stop",
    "options",
    "clone_from_job_id",
}


def parse_training(raw: dict[str, Any]) -> TrainingSpec:
    _unknown(raw, TRAINING_KEYS, "")
    name = _name(raw)
    metadata_raw = raw.get("model_metadata")
    if metadata_raw is None:
        metadata_raw = default_model_metadata()
    try:
        metadata = parse_model_metadata(metadata_raw)
    except MetadataError as exc:
        raise JobConfigError("model_metadata", str(exc)) from None
    try:
        hp = parse_hyperparameters(_object(raw, "hyperparameters"), metadata.training_algorithm)
    except HyperparameterError as exc:
        raise JobConfigError(f"hyperparameters.{exc.key}", str(exc)) from None
    source = raw.get("reward_function")
    if not isinstance(source, str) or not source.strip():
        raise JobConfigError("reward_function", "the reward_function.py source text is required")
    problems, _ = check_source(source)
    if problems:
        first = problems[0]
        line = f" (line {first.line})" if first.line else ""
        raise JobConfigError("reward_function", f"{first.code}: {first.message}{line}")
    world = parse_world(_object(raw, "world"))
    stop_raw = _object(raw, "stop")
    _unknown(stop_raw, {"max_minutes", "max_episodes"}, "stop")
    stop_raw = {"max_minutes": DEFAULT_MAX_MINUTES, **stop_raw}  # an explicit null means no time limit
    max_minutes = stop_raw["max_minutes"]
    max_episodes = stop_raw.get("max_episodes")
    if max_minutes is not None:
        max_minutes = float(_typed(stop_raw, "max_minutes", (int, float), "stop"))
    if max_episodes is not None:
        max_episodes = _typed(stop_raw, "max_episodes", int, "stop")
    if max_minutes is None and max_episodes is None:
        raise JobConfigError("stop", "give max_minutes, max_episodes or both")
    try:
        stop = StopConditions(max_minutes=max_minutes, max_episodes=max_episodes)
    except ConfigError as exc:
        raise JobConfigError("stop", str(exc)) from None
    clone = raw.get("clone_from_job_id")
    if clone is not None:
        clone = _typed(raw, "clone_from_job_id", int, "")
    return TrainingSpec(
        name=name,
        model_metadata=dict(metadata_raw),
        hyperparameters=hp,
        reward_function=source,
        world=world,
        stop=stop,
        options=_options(_object(raw, "options")),
        clone_from_job_id=clone,
    )


@dataclass(frozen=True)
class EvaluationSpec:
    """Evaluates either a completed training job's model (``model_job_id``) or a stored model
    (``model_id``, from the model store); exactly one of the two is set."""

    name: str
    model_job_id: int | None
    world: TrainWorld
    options: dict[str, Any]  # EvaluationSettings fields; built in the job process (trainer.evaluation imports torch)
    model_id: int | None = None

    def settings(self) -> EvaluationSettings:
        from trainer.evaluation import EvaluationSettings

        return EvaluationSettings(**self.options)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "evaluation",
            "name": self.name,
            "model_job_id": self.model_job_id,
            "model_id": self.model_id,
            "world": world_json(self.world),
            "evaluation": self.options,
        }


def parse_evaluation(raw: dict[str, Any]) -> EvaluationSpec:
    _unknown(raw, {"kind", "name", "model_job_id", "model_id", "world", "evaluation"}, "")
    name = _name(raw, "evaluation")
    model_job_id = model_id = None
    if raw.get("model_job_id") is not None:
        model_job_id = _typed(raw, "model_job_id", int, "")
    if raw.get("model_id") is not None:
        model_id = _typed(raw, "model_id", int, "")
    if model_job_id is None and model_id is None:
        raise JobConfigError(
            "model_job_id",
            "the model to evaluate is required: a training job (model_job_id) or a stored model (model_id)",
        )
    if model_job_id is not None and model_id is not None:
        raise JobConfigError("model_id", "give model_job_id or model_id, not both")
    world = parse_world(_object(raw, "world"))
    ev = _object(raw, "evaluation")
    types: dict[str, type | tuple[type, ...]] = {
        "trials": int,
        "continuous": bool,
        "resets": int,
        "off_track_penalty": (int, float),
        "collision_penalty": (int, float),
        "max_steps": int,
        "seed": int,
    }
    _unknown(ev, set(types), "evaluation")
    values = {k: _typed(ev, k, kind, "evaluation") for k, kind in types.items() if ev.get(k) is not None}
    if "resets" in ev and ev["resets"] is None:
        values["resets"] = None  # unlimited resets
    for key in ("off_track_penalty", "collision_penalty"):
        if key in values:
            if not 0 <= values[key] <= 60:
                raise JobConfigError(f"evaluation.{key}", f"= {values[key]}; allowed: 0..60 seconds")
            values[key] = float(values[key])
    if "max_steps" in values and not 1 <= values["max_steps"] <= 100_000:
        raise JobConfigError("evaluation.max_steps", f"= {values['max_steps']}; allowed: 1..100000")
    if values.get("resets") is not None and values["resets"] < 0:
        raise JobConfigError("evaluation.resets", f"= {values['resets']}; allowed: >= 0 or null (unlimited)")
    trials = values.get("trials", 3)
    if not 1 <= trials <= MAX_TRIALS:
        raise JobConfigError("evaluation.trials", f"= {trials}; allowed: 1..{MAX_TRIALS}")
    return EvaluationSpec(name=name, model_job_id=model_job_id, world=world, options=values, model_id=model_id)


def parse_job(raw: dict[str, Any]) -> TrainingSpec | EvaluationSpec:
    kind = raw.get("kind", "training")
    if kind == "training":
        return parse_training(raw)
    if kind == "evaluation":
        return parse_evaluation(raw)
    raise JobConfigError("kind", f"= {kind!r}; allowed: training, evaluation")
