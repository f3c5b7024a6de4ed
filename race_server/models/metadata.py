"""model_metadata.json for import: every problem at once, then the simulator's own object.

The simulator's parser (``race_server.sim.metadata``) stays the single definition of what is valid;
it stops at the first problem, so each part of the file is checked on its own against it (the
rest filled with the console's defaults) and the findings are collected with the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from race_server.models.folder import Problem
from race_server.sim.metadata import (
    ACTION_SPACE_TYPES,
    MetadataError,
    ModelMetadata,
    default_model_metadata,
    parse_model_metadata,
)

FILE = "model_metadata.json"
_CONTINUOUS_DEFAULT = {"steering_angle": {"low": -10.0, "high": 10.0}, "speed": {"low": 1.0, "high": 2.0}}
_SPARE_ACTION = {"steering_angle": 0.0, "speed": 1.0}
_FIELD_IN_MESSAGE = re.compile(r"^(action_space\[\d+\]\.\w+)")


def _probe(
    overrides: Mapping[str, Any], fld: str, problems: list[Problem], relabel: tuple[str, str] | None = None
) -> bool:
    raw = {**default_model_metadata(), **overrides}
    try:
        parse_model_metadata(raw)
    except MetadataError as error:
        detail = str(error)
        if relabel is not None:
            detail = detail.replace(relabel[0], relabel[1])
        code = "ALGORITHM_ACTION_SPACE_MISMATCH" if "sac only works" in detail else "INVALID_MODEL_METADATA"
        precise = _FIELD_IN_MESSAGE.match(detail)
        problems.append(Problem(code, detail, FILE, precise.group(1) if precise else fld))
        return False
    return True


def _continuous(overrides: dict[str, Any]) -> dict[str, Any]:
    return {"action_space_type": "continuous", "action_space": _CONTINUOUS_DEFAULT, **overrides}


def validate_model_metadata(raw: Any) -> tuple[ModelMetadata | None, list[Problem]]:
    """All problems of a parsed model_metadata.json; the metadata when there are none (warnings,
    such as more than 30 discrete actions, come back as problems of severity warning)."""
    if not isinstance(raw, Mapping):
        return None, [Problem("INVALID_MODEL_METADATA", "the file must hold a JSON object", FILE)]
    problems: list[Problem] = []
    space = raw.get("action_space")
    if space is None:
        problems.append(Problem("INVALID_MODEL_METADATA", "action_space is missing", FILE, "action_space"))
    inferred = "continuous" if isinstance(space, Mapping) else "discrete"
    kind = raw.get("action_space_type", inferred)
    kind_ok = _probe(
        _continuous({"action_space_type": kind}) if kind == "continuous" else {"action_space_type": kind},
        "action_space_type",
        problems,
    )
    for key in ("neural_network", "sensor"):
        if key in raw:
            _probe({key: raw[key]}, key, problems)
    algorithm = raw.get("training_algorithm", "clipped_ppo")
    algorithm_ok = _probe(_continuous({"training_algorithm": algorithm}), "training_algorithm", problems)
    if algorithm_ok and kind_ok and algorithm == "sac" and kind == "discrete":
        problems.append(
            Problem(
                "ALGORITHM_ACTION_SPACE_MISMATCH",
                "training_algorithm is sac but action_space_type is discrete; SAC needs a continuous action space",
                FILE,
                "training_algorithm",
            )
        )
    if space is not None and kind_ok and kind in ACTION_SPACE_TYPES:
        _check_space(space, kind, problems)
    if "lidar_config" in raw:
        _probe({"lidar_config": raw["lidar_config"]}, "lidar_config", problems)
    if problems:
        return None, problems
    try:
        metadata = parse_model_metadata(raw)
    except MetadataError as error:  # a combination the per-part checks could not see
        return None, [Problem("INVALID_MODEL_METADATA", str(error), FILE)]
    warnings = [Problem("TOO_MANY_ACTIONS", w, FILE, "action_space", "warning") for w in metadata.warnings]
    return metadata, warnings


def _check_space(space: Any, kind: str, problems: list[Problem]) -> None:
    if kind == "continuous":
        _probe(_continuous({"action_space": space}), "action_space", problems)
        return
    if not isinstance(space, list):
        _probe({"action_space": space}, "action_space", problems)
        return
    before = len(problems)
    if len(space) < 2:
        problems.append(
            Problem(
                "INVALID_MODEL_METADATA",
                f"action_space must hold at least 2 actions, got {len(space)}",
                FILE,
                "action_space",
            )
        )
    for i, item in enumerate(space):
        probe_item = {k: v for k, v in item.items() if k != "index"} if isinstance(item, Mapping) else item
        _probe(
            {"action_space": [probe_item, _SPARE_ACTION]},
            f"action_space[{i}]",
            problems,
            relabel=("action_space[0]", f"action_space[{i}]"),
        )
    if len(problems) == before and len(space) >= 2:
        _probe({"action_space": space}, "action_space", problems)
