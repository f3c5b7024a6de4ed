"""``trackside train`` / ``trackside evaluate`` through typer, with the reward in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from trainer.cli import register

REWARD = "def reward_function(params):\n    return 1.0 if params['all_wheels_on_track'] else 1e-3\n"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_train_then_evaluate(tmp_path: Path) -> None:
    (tmp_path / "reward_function.py").write_text(REWARD)
    (tmp_path / "hp.json").write_text(json.dumps({"num_epochs": 3, "num_episodes_between_training": 5}))
    out = tmp_path / "m"
    runner = CliRunner()
    result = runner.invoke(
        _app(),
        [
            "train",
            str(out),
            "--reward",
            str(tmp_path / "reward_function.py"),
            "--hyperparameters",
            str(tmp_path / "hp.json"),
            "--direction",
            "ccw",
            "--max-episodes",
            "5",
            "--workers",
            "0",
            "--envs-per-worker",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "episodes 5/5" in result.output and "mean progress" in result.output
    assert (out / "reward_function.py").read_text() == REWARD
    assert json.loads((out / "hyperparameters.json").read_text())["num_epochs"] == 3
    assert (out / "model.onnx").is_file()

    result = runner.invoke(
        _app(),
        [
            "evaluate",
            str(out),
            "--trials",
            "2",
            "--json",
            "--resets",
            "1",
            "--track",
            "2024_reinvent_champ",
            "--direction",
            "cw",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    assert [t["trial"] for t in doc["trials"]] == [1, 2]
    assert {"lap_time_s", "completion_percentage", "status", "off_track_count", "crash_count", "reset_count"} <= set(
        doc["trials"][0]
    )
    assert len(list((out / "metrics" / "evaluation").glob("evaluation-*.json"))) == 1


def test_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "hp.json").write_text(json.dumps({"batch_size": 100}))
    runner = CliRunner()
    result = runner.invoke(_app(), ["train", str(tmp_path / "m"), "--hyperparameters", str(tmp_path / "hp.json")])
    assert result.exit_code == 2
    assert "batch_size = 100" in result.output and "32 | 64" in result.output
    result = runner.invoke(_app(), ["train", str(tmp_path / "m"), "--direction", "cw", "--max-episodes", "1"])
    assert result.exit_code == 2 and "not enabled" in result.output
    (tmp_path / "bad.py").write_text("def reward_function(params):\n    return params['no_such_param']\n")
    result = runner.invoke(
        _app(),
        ["train", str(tmp_path / "b"), "--reward", str(tmp_path / "bad.py"), "--max-episodes", "1", "--workers", "0"],
    )
    assert result.exit_code == 2 and "reward function" in result.output and "line 2" in result.output
    result = runner.invoke(
        _app(),
        [
            "train",
            str(tmp_path / "m"),
            "--race-type",
            "head_to_bot",
            "--bots",
            "7",
            "--bot-speed",
            "1.5",
            "--bot-lane-change",
            "2",
            "4",
        ],
    )
    assert result.exit_code == 2 and "number_of_bots" in result.output
    result = runner.invoke(_app(), ["train", str(tmp_path / "m"), "--race-type", "object_avoidance", "--objects", "9"])
    assert result.exit_code == 2 and "number_of_obstacles" in result.output
    result = runner.invoke(_app(), ["evaluate", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "model_metadata.json" in result.output
