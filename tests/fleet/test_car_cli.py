"""`trackside car --help` and `trackside timer --help` explain themselves; bad invocations fail clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def trackside(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TRACKSIDE_CAR_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "race_server.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_car_help_says_how_to_install_and_run_it() -> None:
    result = trackside("car", "--help")
    assert result.returncode == 0, result.stderr
    for words in ("--server", "--token", "--backend {pwm,simulated}", "300 ms", "pip install", "systemd",
                  "calibration.json", "--steering-channel"):  # fmt: skip
        assert words in result.stdout, words


def test_car_without_a_token_is_refused() -> None:
    result = trackside("car", "--server", "http://127.0.0.1:9")
    assert result.returncode == 2 and "--token" in result.stderr


def test_timer_help() -> None:
    result = trackside("timer", "--help")
    assert result.returncode == 0 and "--pins" in result.stdout and "debounce" in result.stdout.lower()


def test_the_car_bench_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from car_client.bench import main

    assert main(["--trips", "2"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert result["dead_man"]["trips"] == 2 and result["dead_man"]["contract_ms"] == 300
    assert result["dead_man"]["trip_ms_max"] >= 300  # it never trips early
