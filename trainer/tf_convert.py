"""TensorFlow ⇄ Trackside weights, for DeepRacer console / DRfC / deepracer-on-aws models.

Needs the optional ``tensorflow`` extra (imported lazily, only here). Variable names follow the
console's checkpoints (SPEC "Model folder"): the critic is ``network_0``, the actor ``network_1``;
layers are numbered as rl_coach numbers them (a layer and its activation block each take an index,
so convolutions are ``Conv2d_0``, ``Conv2d_2``, ``Conv2d_4`` …). Kernels are HWIO / [in, out] in
TensorFlow and OIHW / [out, in] in torch; flattening is NHWC on both sides.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from race_server.models.folder import CheckpointRef
from race_server.sim.metadata import ModelMetadata

ROOT = "main_level/agent/main/online"
CAMERA_INPUT = f"{ROOT}/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA"
PPO_OUTPUT = f"{ROOT}/network_1/ppo_head_0/policy"
SAC_OUTPUT = f"{ROOT}/network_0/sac_policy_head_0/policy"
CONVERT_FORMAT = "trackside-checkpoint-1"


class ConversionError(ValueError):
    """The TensorFlow checkpoint does not hold the network the metadata describes."""


def tensorflow_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _linear_layers(seq: nn.Sequential, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    for index, layer in enumerate(seq):
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            yield f"{prefix}.{index}", layer


def variable_map(net: nn.Module, metadata: ModelMetadata) -> dict[str, tuple[str, str]]:
    """TensorFlow variable name -> (torch state key, kind) for a PPO actor-critic."""
    from trainer.networks import PPOActorCritic

    if not isinstance(net, PPOActorCritic):
        raise ConversionError("only clipped_ppo models convert (SAC checkpoints are not mapped yet)")
    out: dict[str, tuple[str, str]] = {}
    for network, torso_name in (("network_0", "critic_torso"), ("network_1", "actor_torso")):
        torso = getattr(net, torso_name)
        for sensor in torso.keys:
            emb = torso.embedders[sensor]
            layers: list[tuple[str, nn.Module]] = []
            if hasattr(emb, "convs"):
                layers += list(_linear_layers(emb.convs, f"{torso_name}.embedders.{sensor}.convs"))
                layers += list(_linear_layers(emb.dense, f"{torso_name}.embedders.{sensor}.dense"))
            else:
                layers += list(_linear_layers(emb.net, f"{torso_name}.embedders.{sensor}.net"))
            for i, (key, layer) in enumerate(layers):
                kind = "Conv2d" if isinstance(layer, nn.Conv2d) else "Dense"
                base = f"{ROOT}/{network}/{sensor}/{kind}_{2 * i}"
                out[f"{base}/kernel"] = (f"{key}.weight", kind)
                out[f"{base}/bias"] = (f"{key}.bias", "bias")
        for i, (key, _) in enumerate(_linear_layers(torso.middleware, f"{torso_name}.middleware")):
            base = f"{ROOT}/{network}/middleware_fc_embedder/Dense_{2 * i}"
            out[f"{base}/kernel"] = (f"{key}.weight", "Dense")
            out[f"{base}/bias"] = (f"{key}.bias", "bias")
    out[f"{ROOT}/network_0/v_values_head_0/output/kernel"] = ("value_head.weight", "Dense")
    out[f"{ROOT}/network_0/v_values_head_0/output/bias"] = ("value_head.bias", "bias")
    head = "policy_fc" if net.discrete else "policy_mean"
    out[f"{ROOT}/network_1/ppo_head_0/{head}/kernel"] = ("policy_head.weight", "Dense")
    out[f"{ROOT}/network_1/ppo_head_0/{head}/bias"] = ("policy_head.bias", "bias")
    if not net.discrete:
        out[f"{ROOT}/network_1/ppo_head_0/policy_log_std"] = ("log_std", "bias")
    return out


def to_torch(value: NDArray[Any], kind: str) -> torch.Tensor:
    if kind == "Conv2d":
        value = np.transpose(value, (3, 2, 0, 1))
    elif kind == "Dense":
        value = value.T
    return torch.as_tensor(np.ascontiguousarray(value, dtype=np.float32))


def to_tensorflow(value: torch.Tensor, kind: str) -> NDArray[np.float32]:
    array = value.detach().cpu().numpy().astype(np.float32)
    if kind == "Conv2d":
        return np.transpose(array, (2, 3, 1, 0))
    if kind == "Dense":
        return np.ascontiguousarray(array.T)
    return array


def read_tf_checkpoint(prefix: Path) -> dict[str, NDArray[Any]]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def convert_checkpoint(root: Path, metadata: ModelMetadata, ref: CheckpointRef, out: Path | None = None) -> Path:
    """Read ``model/<name>`` (TensorFlow) and write Trackside's ``.pt``; returns its path (in a new
    temporary folder unless ``out`` is given: the source folder is never written)."""
    from race_server.models.weights import policy_network

    net = policy_network(metadata)
    tf_vars = read_tf_checkpoint(root / "model" / ref.name)
    state = net.state_dict()
    problems: list[str] = []
    for tf_name, (key, kind) in variable_map(net, metadata).items():
        if tf_name not in tf_vars:
            problems.append(f"missing {tf_name}")
            continue
        value = to_torch(tf_vars[tf_name], kind)
        if tuple(value.shape) != tuple(state[key].shape):
            problems.append(f"{tf_name} has shape {list(tf_vars[tf_name].shape)}")
            continue
        state[key] = value
    if problems:
        raise ConversionError("; ".join(problems[:4]))
    net.load_state_dict(state)
    target = out or Path(tempfile.mkdtemp(prefix="trackside-convert-")) / f"{ref.name}.pt"
    torch.save({"format": CONVERT_FORMAT, "model": net.state_dict()}, target)
    return target


def write_tf_checkpoint(net: nn.Module, metadata: ModelMetadata, prefix: Path) -> list[str]:
    """Save the weights as a TensorFlow checkpoint with the console's variable names."""
    import tensorflow as tf

    mapping = variable_map(net, metadata)
    state = net.state_dict()
    graph = tf.Graph()
    with graph.as_default():
        variables = [
            tf.compat.v1.get_variable(name, initializer=tf.constant(to_tensorflow(state[key], kind)))
            for name, (key, kind) in mapping.items()
        ]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix))
    return sorted(mapping)


def write_frozen_pb(net: nn.Module, metadata: ModelMetadata, out: Path) -> None:
    """A frozen graph a stock DeepRacer car loads: camera input [1,120,160,1] (0-255), softmax
    (discrete) or mean (continuous) output under the console's node names."""
    import tensorflow as tf

    from trainer.networks import CameraEmbedder, PPOActorCritic

    if not isinstance(net, PPOActorCritic) or metadata.sensors != ("FRONT_FACING_CAMERA",):
        raise ConversionError("model.pb export covers clipped_ppo models with the front camera only")
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    torso = net.actor_torso
    emb = torso.embedders["FRONT_FACING_CAMERA"]
    assert isinstance(emb, CameraEmbedder)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 120, 160, 1], name=CAMERA_INPUT)
        h = x * (1.0 / 255.0)
        for key, layer in _linear_layers(emb.convs, "actor_torso.embedders.FRONT_FACING_CAMERA.convs"):
            stride = layer.stride[0] if isinstance(layer.stride, tuple) else layer.stride
            kernel = tf.constant(to_tensorflow(torch.as_tensor(state[f"{key}.weight"]), "Conv2d"))
            h = tf.nn.relu(tf.nn.conv2d(h, kernel, strides=stride, padding="VALID") + state[f"{key}.bias"])
        h = tf.reshape(h, [1, -1])
        dense = [
            *_linear_layers(emb.dense, "actor_torso.embedders.FRONT_FACING_CAMERA.dense"),
            *_linear_layers(torso.middleware, "actor_torso.middleware"),
        ]
        for key, _ in dense:
            h = tf.nn.relu(tf.matmul(h, state[f"{key}.weight"].T) + state[f"{key}.bias"])
        logits = tf.matmul(h, state["policy_head.weight"].T) + state["policy_head.bias"]
        if net.discrete:
            tf.nn.softmax(logits, name=PPO_OUTPUT)
        else:
            tf.identity(tf.tanh(logits), name=PPO_OUTPUT)
    out.write_bytes(graph.as_graph_def().SerializeToString())
