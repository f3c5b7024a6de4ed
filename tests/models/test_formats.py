"""Every model_metadata.json and hyperparameters.json in the fixtures, accepted or rejected with a
precise message; problems are all reported at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from race_server.models.metadata import validate_model_metadata
from race_server.models.validation import validate_folder, validate_hyperparameters
from race_server.sim.metadata import default_model_metadata, parse_model_metadata
from tests.models.builders import write_trackside_folder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepracer-formats"


def load(rel: str) -> Any:
    return json.loads((FIXTURES / rel).read_text())


@pytest.mark.parametrize(
    ("rel", "actions", "kind", "algorithm"),
    [
        ("utils-sample-model-v3-discrete/model_metadata.json", 12, "discrete", "clipped_ppo"),
        ("drfc-run-v4-discrete/model/model_metadata.json", 14, "discrete", "clipped_ppo"),
        ("console-v4-lidar-config/model/model_metadata.json", None, None, None),
        ("drfc-sac-continuous-v4/model_metadata_sac.json", 0, "continuous", "sac"),
    ],
)
def test_real_metadata_files_are_accepted(rel: str, actions: int | None, kind: str | None, algorithm: str) -> None:
    metadata, problems = validate_model_metadata(load(rel))
    assert metadata is not None, problems
    assert [p for p in problems if p.severity == "error"] == []
    assert metadata == parse_model_metadata(load(rel))  # the simulator's own object
    if actions is not None:
        assert len(metadata.actions) == actions and metadata.action_space_type == kind
        assert metadata.training_algorithm == algorithm


def test_lidar_console_file_keeps_its_lidar_config() -> None:
    metadata, _ = validate_model_metadata(load("console-v4-lidar-config/model/model_metadata.json"))
    assert metadata is not None and metadata.lidar_config == {
        "num_sectors": 8,
        "num_values_per_sector": 8,
        "clipping_dist": 2.0,
    }
    assert metadata.camera == "FRONT_FACING_CAMERA"


def test_496_action_file_is_accepted_with_a_warning() -> None:
    metadata, problems = validate_model_metadata(load("discrete-496-actions/model_metadata.json"))
    assert metadata is not None and len(metadata.actions) == 496
    assert [(p.code, p.severity, p.field) for p in problems] == [("TOO_MANY_ACTIONS", "warning", "action_space")]
    assert "496 actions" in problems[0].message and "30" in problems[0].message


def test_malformed_discrete_list_with_continuous_type_is_rejected_precisely() -> None:
    metadata, problems = validate_model_metadata(load("malformed-discrete-list-continuous-type/model_metadata.json"))
    assert metadata is None
    assert [(p.code, p.field) for p in problems] == [("INVALID_MODEL_METADATA", "action_space")]
    assert "continuous" in problems[0].message and "got a list" in problems[0].message
    assert problems[0].file == "model_metadata.json"


def test_drfc_hyperparameters_are_accepted_and_unused_keys_reported() -> None:
    values, problems = validate_hyperparameters(load("drfc-run-v4-discrete/ip/hyperparameters.json"), "ip/h.json", None)
    assert values is not None and values["discount_factor"] == 0.95 and values["num_epochs"] == 3
    assert {p.code for p in problems} == {"SETTING_NOT_USED"}
    assert any("exploration_type" in p.message for p in problems)


def test_every_problem_is_reported_at_once() -> None:
    raw = default_model_metadata()
    raw["action_space"][1]["speed"] = 9.0
    raw["action_space"][4]["steering_angle"] = -45
    raw["neural_network"] = "RESNET"
    raw["sensor"] = ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]
    metadata, problems = validate_model_metadata(raw)
    assert metadata is None
    assert {p.field for p in problems} == {
        "action_space[1].speed",
        "action_space[4].steering_angle",
        "neural_network",
        "sensor",
    }


def test_sac_with_discrete_space_gets_the_seed_sentence() -> None:
    raw = {**default_model_metadata(), "training_algorithm": "sac"}
    _, problems = validate_model_metadata(raw)
    assert [p.code for p in problems] == ["ALGORITHM_ACTION_SPACE_MISMATCH"]
    assert problems[0].message.startswith("SAC algorithm only works with Continuous action space.")


@pytest.mark.parametrize(
    ("space", "field"),
    [
        ({"steering_angle": {"low": 10, "high": -10}, "speed": {"low": 1, "high": 2}}, "action_space"),
        ({"steering_angle": {"low": -10, "high": 10}, "speed": {"low": 2, "high": 2}}, "action_space"),
        ({"steering_angle": {"low": -40, "high": 10}, "speed": {"low": 1, "high": 2}}, "action_space"),
    ],
)
def test_continuous_low_must_be_below_high_and_in_range(space: dict[str, object], field: str) -> None:
    raw = {**default_model_metadata(), "action_space_type": "continuous", "action_space": space}
    _, problems = validate_model_metadata(raw)
    assert [p.field for p in problems] == [field]


def test_single_discrete_action_is_rejected() -> None:
    raw = {**default_model_metadata(), "action_space": [{"steering_angle": 0, "speed": 1}]}
    _, problems = validate_model_metadata(raw)
    assert any("at least 2 actions" in p.message for p in problems)


def test_hyperparameters_all_bad_keys_at_once() -> None:
    raw = {"batch_size": 100, "lr": 1.0, "loss_type": "l1", "num_epochs": 5}
    values, problems = validate_hyperparameters(raw, "hyperparameters.json", None)
    assert values is None
    assert sorted(p.field or "" for p in problems) == ["batch_size", "loss_type", "lr"]


@pytest.mark.parametrize("place", ["hyperparameters.json", "ip/hyperparameters.json"])
def test_hyperparameters_found_at_root_or_under_ip(tmp_path: Path, place: str) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "hyperparameters.json").unlink()
    (folder / place).parent.mkdir(exist_ok=True)
    (folder / place).write_text(json.dumps({"batch_size": 128, "lr": 0.0001}))
    report = validate_folder(folder)
    assert report.ok, report.errors
    assert report.hyperparameters is not None and report.hyperparameters["batch_size"] == 128


def test_missing_optional_files_are_warnings_with_defaults(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "hyperparameters.json").unlink()
    (folder / "training_params.yaml").unlink()
    report = validate_folder(folder)
    assert report.ok
    assert {(p.code, p.file) for p in report.warnings} == {
        ("MISSING_OPTIONAL_FILE", "hyperparameters.json"),
        ("MISSING_OPTIONAL_FILE", "training_params.yaml"),
    }
    assert report.hyperparameters is not None and report.hyperparameters["batch_size"] == 64
