"""A LIVE run's simtrace carries the racer's reward function's value for every step, as DeepRacer's
evaluation logs it; a reference-driver run logs reward 0 and says so."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from race_server.live.session import LiveSession
from race_server.live.spec import DriverSpec, RunSpec
from race_server.queue.evaluator import evaluate_run
from race_server.queue.recorder import RunRecorder
from race_server.queue.run_rewards import REFERENCE_DRIVER, write_scored_run_logs
from tests.live.policies import write_policy

ROUTE = ("reinvent_base", False)
PROGRESS_REWARD = "def reward_function(params):\n    return params['progress'] / 100.0\n"


def _drive(driver: DriverSpec, slot_s: float, scored_as: DriverSpec | None = None) -> list[dict[str, Any]]:
    """A run's telemetry; ``scored_as``: the spec the session sees after loading ``driver`` (a
    reference driver that drives laps, recorded as a model with a reward function)."""
    session = LiveSession(1, *ROUTE)
    spec = RunSpec(1, 7, 3, *ROUTE, objects={}, driver=driver, slot_s=slot_s, countdown_s=0.0)
    assert session.launch(spec) == []
    if scored_as is not None:
        assert session.run is not None
        session.run.spec = replace(spec, driver=scored_as)
    telemetry: list[dict[str, Any]] = []
    while session.running:
        telemetry += [event for event in session.tick() if event["type"] == "telemetry"]
    return telemetry


async def _logs(
    tmp_path: Path, driver: DriverSpec, telemetry: list[dict[str, Any]]
) -> tuple[list[dict[str, str]], Any]:
    recorder = RunRecorder(tmp_path)
    recorder.begin(1, 7, ROUTE, driver)
    for event in telemetry:
        recorder.record(1, 7, event)
    written = recorder.finish(1, 7)
    assert written is not None
    await written
    run = recorder.run_dir(1, 7)
    with (run / "simtrace.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    return rows, json.loads((run / "metrics.json").read_text())


async def test_a_live_run_logs_its_reward_function_row_by_row(tmp_path: Path) -> None:
    driver = replace(write_policy(tmp_path, continuous=False), reward_function=PROGRESS_REWARD)
    telemetry = _drive(driver, slot_s=12.0)
    rows, metrics = await _logs(tmp_path, driver, telemetry)
    assert len(rows) == len(telemetry) > 100
    driven = [event.get("host") is not None for event in telemetry]
    assert sum(driven) > 50
    for row, stepped in zip(rows, driven, strict=True):
        expected = float(row["progress"]) / 100.0 if stepped else 0.0  # a held tick has no step to judge
        assert float(row["reward"]) == pytest.approx(expected, abs=1e-9)
    assert any(float(row["reward"]) > 0.01 for row in rows)
    assert metrics["reward"] == "scored by the model's reward_function.py"


async def test_the_step_that_completes_a_lap_is_judged_with_progress_100(tmp_path: Path) -> None:
    model = replace(write_policy(tmp_path, continuous=False), reward_function=PROGRESS_REWARD)
    telemetry = _drive(DriverSpec(kind="reference", reference_speed=2.0), slot_s=14.0, scored_as=model)
    rows, _ = await _logs(tmp_path, model, telemetry)
    laps = [row for row in rows if row["episode_status"] == "lap_complete"]
    assert len(laps) == 1 and float(laps[0]["reward"]) == pytest.approx(1.0)
    for row, event in zip(rows, telemetry, strict=True):
        expected = float(row["progress"]) / 100.0 if event.get("host") is not None else 0.0
        assert float(row["reward"]) == pytest.approx(expected, abs=1e-9)


async def test_the_reward_function_sees_the_models_action_and_the_laps_steps(tmp_path: Path) -> None:
    source = "def reward_function(params):\n    return params['speed'] * 1000 + params['steps']\n"
    driver = replace(write_policy(tmp_path, continuous=True, seed=3), reward_function=source)
    telemetry = _drive(driver, slot_s=4.0)
    rows, _ = await _logs(tmp_path, driver, telemetry)
    for row, event in zip(rows, telemetry, strict=True):
        if event.get("host") is not None:
            speed = event["host"]["policy"][1]  # the model's speed, before the multiplier
            assert float(row["reward"]) == pytest.approx(speed * 1000 + float(row["steps"]), abs=1e-6)


def test_a_classic_race_evaluation_run_logs_its_reward_function_too(tmp_path: Path) -> None:
    driver = replace(write_policy(tmp_path, continuous=False), reward_function=PROGRESS_REWARD)
    spec = RunSpec(1, 8, 3, *ROUTE, objects={}, driver=driver, slot_s=5.0, countdown_s=0.0)
    outcome = evaluate_run(spec, min_laps=1, max_s=5.0)
    write_scored_run_logs(tmp_path / "run", outcome.telemetry, ROUTE, driver)
    with (tmp_path / "run" / "simtrace.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(outcome.telemetry) > 50
    for row, event in zip(rows, outcome.telemetry, strict=True):
        expected = float(row["progress"]) / 100.0 if event.get("host") is not None else 0.0
        assert float(row["reward"]) == pytest.approx(expected, abs=1e-9)
    assert any(float(row["reward"]) > 0.01 for row in rows)


async def test_a_reference_driver_run_logs_reward_zero_and_says_so(tmp_path: Path) -> None:
    driver = DriverSpec(kind="reference", reference_speed=2.0)
    telemetry = _drive(driver, slot_s=3.0)
    assert all("params" not in event["host"] for event in telemetry if event.get("host"))
    rows, metrics = await _logs(tmp_path, driver, telemetry)
    assert rows and all(float(row["reward"]) == 0.0 for row in rows)
    assert metrics["reward"] == REFERENCE_DRIVER


async def test_a_failing_reward_function_still_writes_the_logs_and_names_the_failure(tmp_path: Path) -> None:
    source = "def reward_function(params):\n    return 1.0 / 0\n"
    driver = replace(write_policy(tmp_path, continuous=False), reward_function=source)
    telemetry = _drive(driver, slot_s=2.0)
    rows, metrics = await _logs(tmp_path, driver, telemetry)
    assert len(rows) == len(telemetry) and all(float(row["reward"]) == 0.0 for row in rows)
    assert "ZeroDivisionError" in metrics["reward"] and "reward 0" in metrics["reward"]


def test_a_reference_driver_cannot_carry_a_reward_function() -> None:
    with pytest.raises(ValueError, match="reference driver has no reward function"):
        DriverSpec(kind="reference", reward_function=PROGRESS_REWARD)
