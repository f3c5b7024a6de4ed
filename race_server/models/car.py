"""Writers for the physical-car bundle: model.onnx (always) and agent/model.pb (tensorflow extra).
Both load the checkpoint with the trainer's reader and build the network the metadata describes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from race_server.models.weights import load_state, obs_shapes, policy_network
from race_server.sim.metadata import ModelMetadata, parse_model_metadata


def load_policy(folder: Path, checkpoint_name: str) -> tuple[Any, ModelMetadata]:
    """The torch policy of a Trackside model folder, with its weights, ready for inference."""
    metadata = parse_model_metadata(json.loads((folder / "model_metadata.json").read_text()))
    net = policy_network(metadata)
    net.load_state_dict(load_state(folder / "model" / f"{checkpoint_name}.pt"))
    net.eval()
    return net, metadata


def onnx_writer(folder: Path, checkpoint_name: str, out: Path) -> None:
    from trainer.networks import ObsSpec
    from trainer.onnx_export import export_onnx

    net, metadata = load_policy(folder, checkpoint_name)
    export_onnx(net, ObsSpec.of(obs_shapes(metadata)), out)


def pb_writer() -> Callable[[Path, str, Path], None] | None:
    """The frozen-graph writer when TensorFlow is installed (the tensorflow extra), else None."""
    try:
        from trainer.tf_convert import tensorflow_available, write_frozen_pb
    except ImportError:
        return None
    if not tensorflow_available():
        return None

    def write(folder: Path, checkpoint_name: str, out: Path) -> None:
        net, metadata = load_policy(folder, checkpoint_name)
        write_frozen_pb(net, metadata, out)

    return write
