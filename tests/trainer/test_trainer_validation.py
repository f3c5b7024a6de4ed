"""Hyperparameter, metadata and clone-from validation on the real DeepRacer files in fixtures/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from race_server.models.hyperparameters import (
    HyperparameterError,
    Hyperparameters,
    parse_hyperparameters,
    unused_report,
)
from race_server.sim.metadata import MetadataError, parse_model_metadata
from trainer.checkpoint import ModelFolderError, read_model_folder
from trainer.config import (
    CloneError,
    ConfigError,
    StopConditions,
    TrainWorld,
    check_clone,
    direction_name,
    race_type_name,
)
from trainer.train import Trainer, TrainJob, TrainOptions, in_process_reward

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepracer-formats"


def _json(rel: str) -> Any:
    return json.loads((FIXTURES / rel).read_text())


def test_real_hyperparameters_file_parses_with_unused_keys_kept() -> None:
    hp = parse_hyperparameters(_json("drfc-run-v4-discrete/ip/hyperparameters.json"))
    assert (hp.batch_size, hp.num_epochs, hp.lr, hp.discount_factor, hp.loss_type) == (64, 3, 0.0003, 0.95, "huber")
    assert hp.num_episodes_between_training == 20
    assert hp.unused == {
        "e_greedy_value": 1.0,
        "epsilon_steps": 10000,
        "exploration_type": "categorical",
        "term_cond_avg_score": 1000.0,
        "term_cond_max_episodes": 5000,
    }
    assert any("exploration_type" in note for note in unused_report(hp, "clipped_ppo"))
    # what we write back keeps every key the user gave
    assert set(hp.to_json()) >= set(_json("drfc-run-v4-discrete/ip/hyperparameters.json"))


def test_defaults_are_the_consoles() -> None:
    hp = parse_hyperparameters({})
    assert hp == Hyperparameters(
        batch_size=64,
        num_epochs=10,
        lr=3e-4,
        beta_entropy=0.01,
        discount_factor=0.999,
        loss_type="huber",
        num_episodes_between_training=20,
        sac_alpha=0.2,
        stack_size=1,
    )
    assert parse_hyperparameters({}, "sac").num_episodes_between_training == 1


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("batch_size", 100, "32 | 64 | 128 | 256 | 512"),
        ("num_epochs", 11, "3..10"),
        ("num_epochs", 3.5, "an integer"),
        ("lr", 0.01, "1e-08..0.001"),
        ("beta_entropy", -0.1, "0..1"),
        ("discount_factor", 1.5, "0..1"),
        ("loss_type", "l1", "huber | mean squared error"),
        ("num_episodes_between_training", 4, "5..100"),
        ("sac_alpha", "0.2", "a number"),
        ("stack_size", 2, "1"),
        ("learning_rate", 0.1, "a known key"),
    ],
)
def test_bad_hyperparameter_names_key_value_and_range(key: str, value: Any, allowed: str) -> None:
    raw = {**_json("drfc-run-v4-discrete/ip/hyperparameters.json"), key: value}
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters(raw)
    assert info.value.key == key
    assert key in str(info.value) and repr(value) in str(info.value) and allowed in str(info.value)


def test_sac_requires_one_episode_between_training() -> None:
    with pytest.raises(HyperparameterError, match=r"num_episodes_between_training = 20 .* 1 "):
        parse_hyperparameters({"num_episodes_between_training": 20}, "sac")


def test_malformed_real_metadata_is_rejected_clearly() -> None:
    with pytest.raises(MetadataError, match=r"continuous.*got a list"):
        parse_model_metadata(_json("malformed-discrete-list-continuous-type/model_metadata.json"))


def test_496_action_file_is_accepted_with_a_warning_and_builds_a_policy(tmp_path: Path) -> None:
    raw = _json("discrete-496-actions/model_metadata.json")
    meta = parse_model_metadata(raw)
    assert len(meta.actions) == 496
    assert meta.warnings and "30" in meta.warnings[0]
    from trainer.networks import ObsSpec, PPOActorCritic

    net = PPOActorCritic(ObsSpec.of({meta.camera: (120, 160, 1)}), meta.neural_network, len(meta.actions))
    assert net.policy_head.out_features == 496


@pytest.mark.parametrize(
    ("parent", "child", "message"),
    [
        (
            "utils-sample-model-v3-discrete/model_metadata.json",
            "drfc-run-v4-discrete/model/model_metadata.json",
            "12 actions; this model has 14",
        ),
        (
            "drfc-sac-continuous-v4/model_metadata_sac.json",
            "drfc-run-v4-discrete/model/model_metadata.json",
            "continuous action space; this model's is discrete",
        ),
        (
            "drfc-run-v4-discrete/model/model_metadata.json",
            "discrete-496-actions/model_metadata.json",
            "14 actions; this model has 496",
        ),
    ],
)
def test_clone_mismatch_is_a_clear_error(parent: str, child: str, message: str) -> None:
    with pytest.raises(CloneError, match=message):
        check_clone(parse_model_metadata(_json(parent)), parse_model_metadata(_json(child)))


def test_clone_same_space_different_sensor_rejected() -> None:
    parent = _json("drfc-run-v4-discrete/model/model_metadata.json")
    child = {**parent, "sensor": ["FRONT_FACING_CAMERA", "LIDAR"]}
    with pytest.raises(CloneError, match="sensors"):
        check_clone(parse_model_metadata(parent), parse_model_metadata(child))
    check_clone(
        parse_model_metadata(parent), parse_model_metadata(_json("console-v4-lidar-config/model/model_metadata.json"))
    )


def test_trainer_clone_checks_and_copies_weights(tmp_path: Path) -> None:
    reward = "def reward_function(params):\n    return 1.0\n"
    meta = _json("drfc-run-v4-discrete/model/model_metadata.json")
    hp = parse_hyperparameters({"num_epochs": 3, "num_episodes_between_training": 5})
    opts = TrainOptions(workers=0, envs_per_worker=1, export_onnx=False)
    parent = Trainer(
        TrainJob(meta, hp, reward, stop=StopConditions(max_episodes=5)), tmp_path / "p", in_process_reward(reward), opts
    )
    parent.run()
    clone = Trainer(TrainJob(meta, hp, reward, clone_from=tmp_path / "p"), tmp_path / "c", None, opts)
    for a, b in zip(parent.agent.policy.parameters(), clone.agent.policy.parameters(), strict=True):
        assert bool((a == b).all())
    other = _json("utils-sample-model-v3-discrete/model_metadata.json")
    with pytest.raises(CloneError, match="this model has 12"):
        Trainer(TrainJob(other, hp, reward, clone_from=tmp_path / "p"), tmp_path / "x", None, opts)


def test_model_folder_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match=r"model_metadata\.json"):
        read_model_folder(tmp_path)
    shutil.copy(FIXTURES / "drfc-run-v4-discrete/model/model_metadata.json", tmp_path / "model_metadata.json")
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelFolderError, match="coach_checkpoint"):
        read_model_folder(tmp_path)
    (tmp_path / "model" / ".coach_checkpoint").write_text("3_Step-100.ckpt\n")
    with pytest.raises(ModelFolderError, match=r"3_Step-100\.ckpt\.pt: checkpoint file missing"):
        read_model_folder(tmp_path)


def test_world_and_stop_options() -> None:
    assert direction_name("cw") == "CLOCKWISE" and direction_name("ccw") == "COUNTER_CLOCKWISE"
    assert race_type_name("head_to_bot") == "HEAD_TO_BOT"
    with pytest.raises(ConfigError, match="direction = 'up'"):
        direction_name("up")
    with pytest.raises(ConfigError, match="race type"):
        race_type_name("drag")
    with pytest.raises(ConfigError, match="not enabled"):
        TrainWorld(track_id="reinvent_base", direction="CLOCKWISE").validate()
    with pytest.raises(ConfigError, match="number_of_obstacles"):
        TrainWorld(race_type="OBJECT_AVOIDANCE", number_of_obstacles=7).validate()
    with pytest.raises(ConfigError, match="max episodes"):
        StopConditions(max_episodes=0)
    world = TrainWorld(direction="COUNTER_CLOCKWISE", race_type="HEAD_TO_BOT", number_of_bots=2, bot_speed=1.0)
    assert world.objects().number_of_bots == 2
    assert TrainWorld.from_training_params(world.training_params("m")) == world
