"""``model.onnx`` for inference, built node by node from the torch weights.

Building the graph directly (instead of tracing) needs nothing beyond ``onnx`` and mirrors the
network definition exactly. Inputs are float32 named after the sensors (cameras [N, 120, 160, C]
in raw 0-255 pixels, as DeepRacer's frozen graph takes them); the output is DeepRacer's policy tensor:
action probabilities (discrete) or the action mean in [-1, 1] (continuous).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from trainer.networks import CameraEmbedder, ObsSpec, PPOActorCritic, SACActor, Torso, VectorEmbedder

PPO_OUTPUT = "main_level/agent/main/online/network_1/ppo_head_0/policy"
SAC_OUTPUT = "main_level/agent/main/online/network_0/sac_policy_head_0/policy"
OPSET = 17


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, hint: str, value: NDArray[Any]) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def sequential(self, x: str, seq: nn.Sequential) -> str:
        for layer in seq:
            if isinstance(layer, nn.Conv2d):
                w = self.const("W", layer.weight.detach().numpy())
                b = self.const("B", layer.bias.detach().numpy()) if layer.bias is not None else None
                stride = layer.stride if isinstance(layer.stride, tuple) else (layer.stride, layer.stride)
                x = self.op("Conv", [x, w] + ([b] if b else []), strides=list(stride))
            elif isinstance(layer, nn.Linear):
                w = self.const("W", layer.weight.detach().numpy())
                b = self.const("B", layer.bias.detach().numpy())
                x = self.op("Gemm", [x, w, b], transB=1)
            elif isinstance(layer, nn.ReLU):
                x = self.op("Relu", [x])
            else:
                raise TypeError(f"no ONNX mapping for {type(layer).__name__}")
        return x

    def torso(self, torso: Torso, inputs: dict[str, str]) -> str:
        parts = []
        for key in torso.keys:
            emb = torso.embedders[key]
            x = inputs[key]
            if isinstance(emb, CameraEmbedder):
                x = self.op("Mul", [x, self.const("scale", np.array(1.0 / 255.0, np.float32))])
                x = self.op("Transpose", [x], perm=[0, 3, 1, 2])
                x = self.sequential(x, emb.convs)
                x = self.op("Transpose", [x], perm=[0, 2, 3, 1])
                x = self.op("Flatten", [x], axis=1)
                x = self.sequential(x, emb.dense)
            else:
                assert isinstance(emb, VectorEmbedder)
                x = self.sequential(x, emb.net)
            parts.append(x)
        x = parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=1)
        return self.sequential(x, torso.middleware)


def build_onnx(policy: nn.Module, spec: ObsSpec) -> onnx.ModelProto:
    g = _Graph()
    inputs = {key: key for key, _ in spec.shapes}
    if isinstance(policy, PPOActorCritic):
        h = g.torso(policy.actor_torso, inputs)
        head = policy.policy_head
        output_name = PPO_OUTPUT
        final = "Softmax" if policy.discrete else "Tanh"
    elif isinstance(policy, SACActor):
        h = g.torso(policy.torso, inputs)
        head = policy.mean
        output_name = SAC_OUTPUT
        final = "Tanh"
    else:
        raise TypeError(f"cannot export {type(policy).__name__}")
    logits = g.sequential(h, nn.Sequential(head))
    attrs: dict[str, Any] = {"axis": -1} if final == "Softmax" else {}
    g.nodes.append(helper.make_node(final, [logits], [output_name], **attrs))
    graph = helper.make_graph(
        g.nodes,
        "trackside_policy",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["N", *shape]) for k, shape in spec.shapes],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", head.out_features])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="trackside")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export_onnx(policy: nn.Module, spec: ObsSpec, path: Path) -> Path:
    model = build_onnx(policy, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path
