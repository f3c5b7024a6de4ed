"""A racer's model for the physical-car tests: a real ONNX graph over the camera input whose
greedy action is the console default action space's "straight ahead at 0.5 m/s" (index 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from race_server.sim.metadata import default_model_metadata
from tests.models.builders import write_trackside_folder

STRAIGHT_SLOW = 4  # (0°, 0.5 m/s) in the default action space


def write_straight_onnx(
    path: Path, n_actions: int = 10, favourite: int = STRAIGHT_SLOW, shape: tuple[int, int, int] = (120, 160, 1)
) -> Path:
    bias = np.full((1, n_actions), -2.0, dtype=np.float32)
    bias[0, favourite] = 2.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["FRONT_FACING_CAMERA"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Unsqueeze", ["mean", "axis1"], ["mean2d"]),
            helper.make_node("Mul", ["mean2d", "zeros"], ["silent"]),
            helper.make_node("Add", ["silent", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["main_level/agent/policy/policy_1/Softmax"], axis=1),
        ],
        "straight",
        [helper.make_tensor_value_info("FRONT_FACING_CAMERA", TensorProto.FLOAT, ["N", *shape])],
        [
            helper.make_tensor_value_info(
                "main_level/agent/policy/policy_1/Softmax", TensorProto.FLOAT, ["N", n_actions]
            )
        ],
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.zeros((1, n_actions), dtype=np.float32), "zeros"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_racer_folder(root: Path) -> Path:
    folder = write_trackside_folder(root, metadata=default_model_metadata())
    write_straight_onnx(folder / "model.onnx")
    return folder


def write_bundle_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model_metadata.json").write_text(json.dumps(default_model_metadata()))
    write_straight_onnx(root / "model.onnx")
    return root
