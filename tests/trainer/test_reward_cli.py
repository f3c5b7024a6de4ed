"""`trackside reward validate|check` (the sub-app the lead mounts as `trackside reward`)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from trainer.reward_cli import reward_app

runner = CliRunner()
GOOD = "def reward_function(params):\n    return 1.0 if params['all_wheels_on_track'] else 1e-3\n"


def write(tmp_path: Path, source: str) -> str:
    path = tmp_path / "reward_function.py"
    path.write_text(source, encoding="utf-8")
    return str(path)


def test_validate_json_ok(tmp_path: Path) -> None:
    result = runner.invoke(reward_app, ["validate", write(tmp_path, GOOD), "--track", "reinvent_base", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"ok": True, "errors": []}


def test_validate_json_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "import os\ndef reward_function(params):\n    return 1\n")
    result = runner.invoke(reward_app, ["validate", path, "--track", "reinvent_base", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["ok"] is False
    assert [(e["code"], e["line"]) for e in body["errors"]] == [("IMPORT_ERROR", 1)]


def test_validate_text_with_world_options(tmp_path: Path) -> None:
    source = "def reward_function(params):\n    return float(len(params['objects_location']))\n"
    args = [
        "validate",
        write(tmp_path, source),
        "--track",
        "reInvent2019_track",
        "--direction",
        "cw",
        "--race-type",
        "head_to_bot",
        "--bots",
        "2",
        "--bot-speed",
        "0.5",
        "--bot-lane-change",
        "2",
        "4",
    ]
    result = runner.invoke(reward_app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("OK")


def test_check_reports_the_failing_step(tmp_path: Path) -> None:
    source = "def reward_function(params):\n    return 1.0 / (params['steps'] - 3)\n"
    args = [
        "check",
        write(tmp_path, source),
        "--track",
        "reinvent_base",
        "--episodes",
        "2",
        "--json",
        "--race-type",
        "object_avoidance",
        "--objects",
        "2",
        "--random-objects",
    ]
    result = runner.invoke(reward_app, args)
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert [(e["code"], e["step"], e["line"]) for e in body["errors"]] == [("RUNTIME_ERROR", 3, 2)] * 2
    assert body["steps"] > 10


def test_check_ok_text(tmp_path: Path) -> None:
    result = runner.invoke(reward_app, ["check", write(tmp_path, GOOD), "--track", "reinvent_base", "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert "1 episode(s)" in result.output
