"""The host-side race benchmark runs and reports its figures (the figures themselves are not asserted)."""

from __future__ import annotations

from race_server.bench.live import run_race_benchmark


def test_race_benchmark_reports_host_figures() -> None:
    result = run_race_benchmark(ws_clients=0, seconds=1.0)
    assert result["ticks"] >= 15
    assert result["speed_changes"] >= 1
    assert 0.0 <= result["speed_control_apply_p50_ms"] <= result["speed_control_apply_p99_ms"]
    assert 0.0 <= result["tick_jitter_p50_ms"] <= result["tick_jitter_p99_ms"] <= result["tick_jitter_max_ms"]
    assert result["host_priority"]
