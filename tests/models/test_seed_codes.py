"""Each seed error code, produced from a realistic broken folder, with the seed's sentence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from race_server.models.folder import SEED_CODES, Limits
from race_server.models.validation import FolderReport, validate_folder
from race_server.models.weights import check_weights
from race_server.sim.metadata import default_model_metadata
from tests.models.builders import write_tensorflow_folder, write_trackside_folder


def codes(report: FolderReport) -> list[str]:
    return [p.code for p in report.errors]


def check(folder: Path, limits: Limits | None = None) -> FolderReport:
    return validate_folder(folder, limits, weights_check=check_weights)


def only(report: FolderReport, code: str) -> None:
    assert codes(report) == [code], [p.as_json() for p in report.errors]
    assert report.errors[0].message.startswith(SEED_CODES[code])


def test_coach_checkpoint_missing(tmp_path: Path) -> None:
    folder = write_tensorflow_folder(tmp_path / "m")
    (folder / "model" / ".coach_checkpoint").unlink()
    report = check(folder)
    only(report, "COACH_CHECKPOINT_DOES_NOT_EXIST")
    assert report.errors[0].file == "model/.coach_checkpoint"


def test_macos_lost_dot_gets_a_hint(tmp_path: Path) -> None:
    folder = write_tensorflow_folder(tmp_path / "m")
    (folder / "model" / ".coach_checkpoint").rename(folder / "model" / "coach_checkpoint")
    report = check(folder)
    only(report, "COACH_CHECKPOINT_DOES_NOT_EXIST")
    assert "model/coach_checkpoint" in report.errors[0].message and "macOS" in report.errors[0].message


def test_coach_names_a_checkpoint_that_is_not_there(tmp_path: Path) -> None:
    # the seed's own example: pointer 13_Step-25173, folder holds neighbours only
    folder = write_tensorflow_folder(tmp_path / "m", name="13_Step-25174.ckpt")
    (folder / "model" / ".coach_checkpoint").write_text("13_Step-25173.ckpt\n")
    report = check(folder)
    only(report, "CHECKPOINT_FILES_DOES_NOT_EXIST")
    assert report.errors[0].file == "model/13_Step-25173.ckpt"
    assert "13_Step-25174.ckpt" in report.errors[0].message


def test_deepracer_checkpoints_json_wins_over_coach(tmp_path: Path) -> None:
    folder = write_tensorflow_folder(tmp_path / "m")  # .coach_checkpoint is fine
    pointers = {"best_checkpoint": {"name": "319_Step-43282.ckpt"}, "last_checkpoint": {"name": "20_Step-43482.ckpt"}}
    (folder / "model" / "deepracer_checkpoints.json").write_text(json.dumps(pointers))
    report = check(folder)
    assert codes(report) == ["CHECKPOINT_FILES_DOES_NOT_EXIST"] * 2
    assert {p.field for p in report.errors} == {"best_checkpoint.name", "last_checkpoint.name"}


def test_half_a_tensorflow_checkpoint_is_missing(tmp_path: Path) -> None:
    folder = write_tensorflow_folder(tmp_path / "m")
    (folder / "model" / "13_Step-25173.ckpt.data-00000-of-00001").unlink()
    only(check(folder), "CHECKPOINT_FILES_DOES_NOT_EXIST")


def test_required_files_missing_are_all_reported(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "model_metadata.json").unlink()
    (folder / "reward_function.py").unlink()
    report = check(folder)
    assert codes(report) == ["FILE_DOES_NOT_EXIST", "FILE_DOES_NOT_EXIST"]
    assert {p.file for p in report.errors} == {"model_metadata.json", "reward_function.py"}
    assert report.errors[0].message.startswith(SEED_CODES["FILE_DOES_NOT_EXIST"])


def test_folder_over_one_gigabyte(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "metrics" / "training").mkdir(parents=True)
    with (folder / "metrics" / "training" / "training-simtrace.csv").open("wb") as handle:
        handle.truncate(1024**3)  # sparse: the size is real, the disk stays empty
    only(check(folder), "MODEL_TAR_FILE_SIZE_LIMIT_EXCEEDED")


def test_checkpoint_file_over_512_megabytes(tmp_path: Path) -> None:
    folder = write_tensorflow_folder(tmp_path / "m")
    with (folder / "model" / "13_Step-25173.ckpt.data-00000-of-00001").open("r+b") as handle:
        handle.truncate(512 * 1024**2 + 1)
    report = check(folder)
    only(report, "CHECKPOINT_FILE_SIZE_LIMIT_EXCEEDED")
    assert report.errors[0].file == "model/13_Step-25173.ckpt.data-00000-of-00001"


def test_json_over_ten_megabytes(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    raw = default_model_metadata()
    raw["comment"] = "x" * (10 * 1024**2)
    (folder / "model_metadata.json").write_text(json.dumps(raw))
    report = check(folder)
    only(report, "JSON_YAML_FILE_SIZE_LIMIT_EXCEEDED")
    assert report.errors[0].file == "model_metadata.json"


def test_yaml_over_ten_megabytes(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    with (folder / "training_params.yaml").open("a") as handle:
        handle.write("# padding\n" * (1024**2 + 1))
    only(check(folder), "JSON_YAML_FILE_SIZE_LIMIT_EXCEEDED")


def test_weights_that_contradict_the_metadata(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")  # 10 discrete actions
    raw = default_model_metadata()
    raw["action_space"] = raw["action_space"][:6]  # the checkpoint's head still has 10 outputs
    (folder / "model_metadata.json").write_text(json.dumps(raw))
    report = check(folder)
    only(report, "MODEL_VALIDATION_SERVICE_ERROR")
    assert "policy_head" in report.errors[0].message and report.errors[0].file == "model/3_Step-300.ckpt.pt"


def test_edited_checkpoint_file(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    path = folder / "model" / "3_Step-300.ckpt.pt"
    data = bytearray(path.read_bytes())
    data[: len(data) // 2] = os.urandom(len(data) // 2)
    path.write_bytes(bytes(data))
    only(check(folder), "MODEL_VALIDATION_SERVICE_ERROR")


def test_checkpoint_that_runs_code_is_refused(tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "trackside-checkpoint-1", "model": Evil()}, folder / "model" / "3_Step-300.ckpt.pt")
    only(check(folder), "MODEL_VALIDATION_SERVICE_ERROR")
    assert not marker.exists()


def test_bad_checkpoint_name_gets_our_code(tmp_path: Path) -> None:
    folder = write_tensorflow_folder(tmp_path / "m")
    (folder / "model" / ".coach_checkpoint").write_text("model.ckpt-1200\n")
    report = check(folder)
    assert codes(report) == ["INVALID_CHECKPOINT_NAME"]
    assert "<iteration>_Step-<total steps>.ckpt" in report.errors[0].message
