"""Tiny ONNX racers for the host tests: T1's networks with random weights, exported by T1's exporter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from race_server.live.spec import DriverSpec
from race_server.sim.metadata import default_model_metadata
from trainer.networks import ObsSpec, PPOActorCritic
from trainer.onnx_export import export_onnx


def write_policy(folder: Path, *, continuous: bool, seed: int = 0) -> DriverSpec:
    metadata: dict[str, Any] = default_model_metadata()
    if continuous:
        metadata["action_space_type"] = "continuous"
        metadata["action_space"] = {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 2.0}}
    torch.manual_seed(seed)
    spec = ObsSpec.of({"FRONT_FACING_CAMERA": (120, 160, 1)})
    n_actions = None if continuous else len(metadata["action_space"])
    policy = PPOActorCritic(spec, metadata["neural_network"], n_actions).eval()
    path = export_onnx(policy, spec, folder / "model.onnx")
    (folder / "model_metadata.json").write_text(json.dumps(metadata))
    return DriverSpec("onnx", onnx_path=path, model_metadata=metadata)
