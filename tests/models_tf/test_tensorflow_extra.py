"""The tensorflow extra, tested without circularity: the console's network is built here directly in
TensorFlow from SPEC.md's variable names, and Trackside must reproduce TensorFlow's own outputs."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed in this environment")

import torch  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from race_server.models.car import load_policy, onnx_writer, pb_writer  # noqa: E402
from race_server.models.export import write_car_bundle  # noqa: E402
from race_server.models.store import ModelStore  # noqa: E402
from race_server.models.weights import policy_network  # noqa: E402
from race_server.sim.metadata import default_model_metadata, parse_model_metadata  # noqa: E402
from tests.models.builders import REWARD, write_trackside_folder  # noqa: E402
from trainer.tf_convert import CAMERA_INPUT, PPO_OUTPUT, write_frozen_pb, write_tf_checkpoint  # noqa: E402

ROOT = "main_level/agent/main/online"
CONTINUOUS = {
    **default_model_metadata(),
    "action_space_type": "continuous",
    "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 3}},
}


def spec_variables(n_out: int, discrete: bool) -> dict[str, list[int]]:
    """The variables SPEC.md lists for a real console checkpoint (SHALLOW network)."""
    names: dict[str, list[int]] = {}
    for net in ("network_0", "network_1"):
        cam = f"{ROOT}/{net}/FRONT_FACING_CAMERA"
        for layer, shape in (("Conv2d_0", [8, 8, 1, 32]), ("Conv2d_2", [4, 4, 32, 64]), ("Conv2d_4", [3, 3, 64, 64])):
            names[f"{cam}/{layer}/kernel"] = shape
            names[f"{cam}/{layer}/bias"] = [shape[-1]]
        names[f"{ROOT}/{net}/middleware_fc_embedder/Dense_0/kernel"] = [11264, 512]
        names[f"{ROOT}/{net}/middleware_fc_embedder/Dense_0/bias"] = [512]
    names[f"{ROOT}/network_0/v_values_head_0/output/kernel"] = [512, 1]
    names[f"{ROOT}/network_0/v_values_head_0/output/bias"] = [1]
    head = "policy_fc" if discrete else "policy_mean"
    names[f"{ROOT}/network_1/ppo_head_0/{head}/kernel"] = [512, n_out]
    names[f"{ROOT}/network_1/ppo_head_0/{head}/bias"] = [n_out]
    if not discrete:
        names[f"{ROOT}/network_1/ppo_head_0/policy_log_std"] = [1, 2]
    return names


def console_folder(
    root: Path, metadata: dict[str, object], seed: int
) -> tuple[Path, NDArray[np.uint8], dict[str, NDArray[np.float32]]]:
    """A console-shaped folder whose checkpoint TensorFlow itself wrote, and TF's outputs on images."""
    discrete = metadata["action_space_type"] == "discrete"
    n_out = len(metadata["action_space"]) if discrete else 2  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(6, 120, 160, 1), dtype=np.uint8)
    (root / "model").mkdir(parents=True)
    graph = tf.Graph()
    with graph.as_default():
        v = {
            name: tf.compat.v1.get_variable(
                name, initializer=tf.constant(rng.normal(0, 0.06, size=shape).astype(np.float32))
            )
            for name, shape in spec_variables(n_out, discrete).items()
        }
        x = tf.compat.v1.placeholder(tf.float32, [None, 120, 160, 1])

        def tower(net: str) -> Any:
            h = x / 255.0
            for layer, stride in (("Conv2d_0", 4), ("Conv2d_2", 2), ("Conv2d_4", 1)):
                base = f"{ROOT}/{net}/FRONT_FACING_CAMERA/{layer}"
                h = tf.nn.relu(tf.nn.conv2d(h, v[f"{base}/kernel"], stride, "VALID") + v[f"{base}/bias"])
            h = tf.reshape(h, [-1, 11264])
            base = f"{ROOT}/{net}/middleware_fc_embedder/Dense_0"
            return tf.nn.relu(tf.matmul(h, v[f"{base}/kernel"]) + v[f"{base}/bias"])

        critic, actor = tower("network_0"), tower("network_1")
        value = (
            tf.matmul(critic, v[f"{ROOT}/network_0/v_values_head_0/output/kernel"])
            + v[f"{ROOT}/network_0/v_values_head_0/output/bias"]
        )
        head = f"{ROOT}/network_1/ppo_head_0/{'policy_fc' if discrete else 'policy_mean'}"
        out = tf.matmul(actor, v[f"{head}/kernel"]) + v[f"{head}/bias"]
        policy = tf.nn.softmax(out) if discrete else out
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(root / "model" / "13_Step-25173.ckpt"))
            got_value, got_policy = session.run([value, policy], {x: images.astype(np.float32)})
    (root / "model" / ".coach_checkpoint").write_text("13_Step-25173.ckpt\n")
    (root / "model_metadata.json").write_text(json.dumps(metadata))
    (root / "reward_function.py").write_text(REWARD)
    return root, images, {"value": got_value[:, 0], "policy": got_policy}


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
async def test_console_checkpoint_import_reproduces_tensorflow(
    store: ModelStore, owner: int, tmp_path: Path, kind: str
) -> None:
    metadata = default_model_metadata() if kind == "discrete" else CONTINUOUS
    folder, images, expected = console_folder(tmp_path / "console", metadata, seed=5)
    assert {"13_Step-25173.ckpt.index", "13_Step-25173.ckpt.meta"} <= {p.name for p in (folder / "model").iterdir()}
    result = await store.import_folder(owner, f"console-{kind}", folder)
    assert result.ok, result.as_json()
    assert result.model is not None and result.model.weights == "ready" and result.model.source == "deepracer"
    back = await store.materialize(result.model.id, tmp_path / "back")
    net, _ = load_policy(back, "13_Step-25173.ckpt")
    obs = {"FRONT_FACING_CAMERA": torch.as_tensor(images)}
    with torch.no_grad():
        value = net.value(obs).numpy()
        head = net.policy_head(net.actor_torso(obs))
        policy = torch.softmax(head, -1).numpy() if kind == "discrete" else head.numpy()
    np.testing.assert_allclose(value, expected["value"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(policy, expected["policy"], rtol=1e-4, atol=1e-5)


async def test_console_checkpoint_with_wrong_shapes_is_refused(store: ModelStore, owner: int, tmp_path: Path) -> None:
    metadata = default_model_metadata()
    folder, _, _ = console_folder(tmp_path / "console", metadata, seed=1)
    metadata["action_space"] = metadata["action_space"][:4]
    (folder / "model_metadata.json").write_text(json.dumps(metadata))
    result = await store.import_folder(owner, "mismatch", folder)
    assert not result.ok and [p.code for p in result.problems if p.severity == "error"] == [
        "MODEL_VALIDATION_SERVICE_ERROR"
    ]


def test_exported_checkpoint_lists_exactly_the_spec_names(tmp_path: Path) -> None:
    metadata = parse_model_metadata(CONTINUOUS)
    net = policy_network(metadata)
    write_tf_checkpoint(net, metadata, tmp_path / "5_Step-500.ckpt")
    listed = dict(tf.train.list_variables(str(tmp_path / "5_Step-500.ckpt")))
    assert listed == spec_variables(2, discrete=False)


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_frozen_pb_gives_trackside_actions_in_tensorflow_and_openvino(tmp_path: Path, kind: str) -> None:
    import openvino as ov

    raw = default_model_metadata() if kind == "discrete" else CONTINUOUS
    folder = write_trackside_folder(tmp_path / "m", metadata=raw, seed=11)
    net, metadata = load_policy(folder, "3_Step-300.ckpt")
    pb = tmp_path / "model.pb"
    write_frozen_pb(net, metadata, pb)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    images = np.random.default_rng(2).integers(0, 256, size=(5, 1, 120, 160, 1)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        tf_out = np.concatenate([session.run(f"{PPO_OUTPUT}:0", {f"{CAMERA_INPUT}:0": image}) for image in images])
    assert graph.get_tensor_by_name(f"{CAMERA_INPUT}:0").shape.as_list() == [1, 120, 160, 1]
    # f32: CPUs with bf16 units otherwise run the graph at reduced precision by default
    compiled = ov.Core().compile_model(ov.convert_model(str(pb)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ov_out = np.concatenate([compiled([image])[compiled.output(0)] for image in images])
    with torch.no_grad():
        ours = net.policy_output({"FRONT_FACING_CAMERA": torch.as_tensor(images[:, 0].astype(np.uint8))})
        ours = torch.softmax(ours, -1) if kind == "discrete" else ours
    np.testing.assert_allclose(tf_out, ours.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ov_out, ours.numpy(), rtol=1e-3, atol=1e-4)
    if kind == "discrete":
        assert tf_out.argmax(-1).tolist() == ov_out.argmax(-1).tolist() == ours.argmax(-1).tolist()


def test_car_bundle_holds_the_frozen_graph(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    writer = pb_writer()
    assert writer is not None
    out = tmp_path / "car.tar.gz"
    with out.open("wb") as handle:
        names = write_car_bundle(
            folder, "3_Step-300.ckpt", handle, onnx_writer=onnx_writer, pb_writer=writer, work=tmp_path
        )
    with tarfile.open(out) as archive:
        assert archive.getnames() == names == ["model_metadata.json", "model.onnx", "agent/model.pb"]


async def test_model_imported_without_tensorflow_converts_later(store: ModelStore, owner: int, tmp_path: Path) -> None:
    folder, images, expected = console_folder(tmp_path / "console", default_model_metadata(), seed=9)
    plain = ModelStore(store.pool, store.data_dir, tf_converter=None)
    imported = await plain.import_folder(owner, "later", folder)
    assert imported.ok and imported.model is not None and imported.model.weights == "needs_conversion"
    assert (await plain.convert(imported.model.id)).problems[0].code == "WEIGHTS_NEED_CONVERSION"
    converted = await store.convert(imported.model.id)
    assert converted.ok and converted.model is not None and converted.model.weights == "ready"
    assert not any(w["code"] == "WEIGHTS_NEED_CONVERSION" for w in converted.model.warnings)
    back = await store.materialize(imported.model.id, tmp_path / "back")
    net, _ = load_policy(back, "13_Step-25173.ckpt")
    with torch.no_grad():
        probs = torch.softmax(net.policy_output({"FRONT_FACING_CAMERA": torch.as_tensor(images)}), -1).numpy()
    np.testing.assert_allclose(probs, expected["policy"], rtol=1e-4, atol=1e-5)
