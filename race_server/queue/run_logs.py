"""A finished run's evaluation logs in DeepRacer's formats: simtrace CSV and metrics JSON.

Built from the run's telemetry (one row per 15 Hz sim step, as the host emitted it): racers load
these into the same notebooks they use for DeepRacer logs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from race_server.sim.simtrace import SimtraceRow, SimtraceWriter

SIMTRACE = "simtrace.csv"
METRICS = "metrics.json"


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else default


def simtrace_rows(telemetry: Sequence[dict[str, Any]]) -> list[SimtraceRow]:
    rows: list[SimtraceRow] = []
    for step, event in enumerate(telemetry, start=1):
        last = step == len(telemetry)
        rows.append(
            SimtraceRow(
                episode=int(event.get("lap", 1)) - 1,
                steps=step,
                x=_num(event.get("x")),
                y=_num(event.get("y")),
                yaw=_num(event.get("heading")),  # the host sends degrees
                steer=_num(event.get("steering")),
                throttle=_num(event.get("speed")),
                action=-1,
                reward=0.0,
                done=last,
                all_wheels_on_track=not event.get("penalty_remaining_ms"),
                progress=_num(event.get("progress")),
                closest_waypoint=int(_num(event.get("closest_waypoint"))),
                track_len=_num(event.get("track_len")),
                tstamp=_num(event.get("t")),
                episode_status="pause" if event.get("penalty_remaining_ms") else "in_progress",
                pause_duration=_num(event.get("penalty_remaining_ms")) / 1000.0,
                obstacle_crash_counter=int(_num(event.get("collisions"))),
                wall_clock=_num(event.get("t")),
            )
        )
    return rows


def metrics_entries(telemetry: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One evaluation-metrics entry per lap started (DeepRacer's evaluation metrics shape)."""
    laps: dict[int, list[dict[str, Any]]] = {}
    for event in telemetry:
        laps.setdefault(int(event.get("lap", 1)), []).append(event)
    entries: list[dict[str, Any]] = []
    numbers = sorted(laps)
    for index, lap in enumerate(numbers):
        rows = laps[lap]
        start_ms = round(_num(rows[0].get("t")) * 1000)
        end_ms = round(_num(rows[-1].get("t")) * 1000)
        complete = index < len(numbers) - 1
        first, last = rows[0], rows[-1]
        entries.append(
            {
                "completion_percentage": 100 if complete else round(_num(last.get("progress"))),
                "metric_time": end_ms,
                "start_time": start_ms,
                "elapsed_time_in_milliseconds": end_ms - start_ms,
                "episode_status": "Lap complete" if complete else "Time up",
                "crash_count": int(_num(last.get("collisions")) - _num(first.get("collisions"))),
                "immobilized_count": 0,
                "off_track_count": int(_num(last.get("off_track")) - _num(first.get("off_track"))),
                "reversed_count": 0,
                "reset_count": int(_num(last.get("resets")) - _num(first.get("resets"))),
                "trial": lap,
            }
        )
    return entries


def write_run_logs(folder: Path, telemetry: Sequence[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (SIMTRACE + ".tmp")
    with tmp.open("w", newline="") as stream:
        SimtraceWriter(stream).write_rows(simtrace_rows(telemetry))
    tmp.replace(folder / SIMTRACE)
    tmp = folder / (METRICS + ".tmp")
    tmp.write_text(json.dumps({"metrics": metrics_entries(telemetry)}))
    tmp.replace(folder / METRICS)
