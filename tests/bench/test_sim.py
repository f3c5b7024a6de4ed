"""`trackside bench sim` measures and reports every figure (the figures' floors are the benchmark's job)."""

from __future__ import annotations

import json
import subprocess
import sys

from race_server.bench.camera import benchmark_camera
from race_server.bench.sim import run_sim_benchmark

SIM_FIGURES = (
    "env_steps_per_s",
    "env_steps_per_s_lidar_stereo",
    "physics_steps_per_s",
    "camera_fps",
    "peak_rss_mb",
    "realtime_factor",
    "reward_params_copy_us",
)


def test_benchmark_counts_rendered_frames() -> None:
    rate = benchmark_camera(0.05)
    assert isinstance(rate, float)
    assert rate > 0.0


def test_sim_benchmark_reports_every_figure() -> None:
    result = run_sim_benchmark(0.2)
    assert tuple(result) == SIM_FIGURES
    assert all(value > 0.0 for value in result.values())


def test_the_command_prints_one_json_object_with_the_same_keys() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "race_server.cli", "bench", "sim", "--seconds", "0.2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    body = json.loads(line)
    assert body["ok"] is True and body["errors"] == []
    assert set(SIM_FIGURES) <= set(body)
