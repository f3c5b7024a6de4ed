"""Do a Trackside checkpoint's weights fit its model_metadata.json? (MODEL_VALIDATION_SERVICE_ERROR)

A shell around torch: the checkpoint is loaded with ``weights_only=True`` (no pickled code runs)
and compared, key by key and shape by shape, with the network the metadata describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from race_server.models.folder import CheckpointRef, Problem
from race_server.sim.metadata import ModelMetadata

CAMERA_SHAPE = (120, 160)


def obs_shapes(metadata: ModelMetadata) -> dict[str, tuple[int, ...]]:
    from race_server.sim import lidar

    h, w = CAMERA_SHAPE
    shapes: dict[str, tuple[int, ...]] = {}
    for name in metadata.sensors:
        if name == "FRONT_FACING_CAMERA":
            shapes[name] = (h, w, 1)
        elif name == "STEREO_CAMERAS":
            shapes[name] = (h, w, 2)
        elif name == "LIDAR":
            shapes[name] = (lidar.LIDAR_SAMPLES,)
        elif name == "SECTOR_LIDAR":
            shapes[name] = (lidar.NUMBER_OF_SECTORS,)
        else:
            per = int((metadata.lidar_config or {}).get("num_values_per_sector", lidar.DISCRETIZED_VALUES_PER_SECTOR))
            shapes[name] = (lidar.NUMBER_OF_SECTORS * per,)
    return shapes


def policy_network(metadata: ModelMetadata) -> Any:
    """The torch module whose state a checkpoint of this model holds."""
    from trainer.networks import ObsSpec, PPOActorCritic, SACActor

    spec = ObsSpec.of(obs_shapes(metadata))
    if metadata.training_algorithm == "sac":
        return SACActor(spec, metadata.neural_network)
    n_actions = len(metadata.actions) if metadata.action_space_type == "discrete" else None
    return PPOActorCritic(spec, metadata.neural_network, n_actions)


def state_of(loaded: Any) -> Mapping[str, Any]:
    """Training checkpoints wrap the weights ({"model": …, "optimizer": …}); bare state dicts too.
    The trainer's own nest theirs one level deeper, under "agent" (trainer.train.Trainer.state)."""
    if isinstance(loaded, Mapping):
        agent = loaded.get("agent")
        if isinstance(agent, Mapping):
            return state_of(agent)
        for key in ("model", "policy", "actor"):
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                return inner
        return loaded
    raise ValueError(f"expected a state dict, found {type(loaded).__name__}")


def load_state(path: Path) -> Mapping[str, Any]:
    """The network weights of a Trackside checkpoint (the trainer's reader: weights_only, format tag)."""
    from trainer.checkpoint import load_checkpoint

    return state_of(load_checkpoint(path))


def check_weights(root: Path, metadata: ModelMetadata, ref: CheckpointRef) -> list[Problem]:
    if ref.kind != "trackside":
        return []
    rel = next(f for f in ref.files if f.endswith(".pt"))
    try:
        state = load_state(root / rel)
    except Exception as error:  # torch raises many types for a damaged or hostile file
        return [Problem("MODEL_VALIDATION_SERVICE_ERROR", f"{rel} cannot be read: {error}"[:500], rel)]
    expected = policy_network(metadata).state_dict()
    problems: list[str] = []
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing {', '.join(missing[:4])}")
    if extra:
        problems.append(f"unexpected {', '.join(extra[:4])}")
    for key in sorted(set(expected) & set(state)):
        shape = tuple(getattr(state[key], "shape", ()))
        if shape != tuple(expected[key].shape):
            problems.append(f"{key} has shape {list(shape)}, the metadata needs {list(expected[key].shape)}")
    if not problems:
        return []
    return [
        Problem(
            "MODEL_VALIDATION_SERVICE_ERROR",
            f"{rel} does not match model_metadata.json ({metadata.neural_network}, "
            f"{metadata.training_algorithm}, {len(metadata.actions) or 'continuous'} actions): "
            + "; ".join(problems[:4]),
            rel,
            "action_space" if any("policy" in p for p in problems) else None,
        )
    ]
