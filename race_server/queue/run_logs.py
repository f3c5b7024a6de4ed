"""A finished run's evaluation logs in DeepRacer's formats: simtrace CSV and metrics JSON.

Built from the run's telemetry (one row per 15 Hz sim step, as the host emitted it): racers load
these into the same notebooks they use for DeepRacer logs (deepracer-utils reads them as an
evaluation: one episode per lap).

* Each lap is an episode, numbered from 0; ``steps`` count from 1.0 within it.
* The step that completes a lap belongs to that lap: its row is ``lap_complete`` with progress 100
  (the host's telemetry already counts it under the next lap).
* ``X``, ``Y`` are the reward params' point 0.14 m ahead of the car origin; ``steer`` / ``throttle``
  the commanded action; ``closest_waypoint`` and ``track_len`` come from the track; ``reward`` is the
  row's ``reward`` (race_server.queue.run_rewards scores the racer's reward function), else 0.
* ``tstamp`` is the run's clock; ``wall_clock`` is left empty (the telemetry has no host time).
* metrics.json has one entry per lap driven; a lap's ``elapsed_time_in_milliseconds`` is its
  time from the race timing, and nothing is written for a lap that has no step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from race_server.sim.simtrace import SimtraceRow, SimtraceWriter
from race_server.sim.tracks import Track, load_track
from race_server.sim.world import REFERENCE_OFFSET

SIMTRACE = "simtrace.csv"
METRICS = "metrics.json"

Route = tuple[str, bool]  # route id, reversed


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else default


def _applied(event: dict[str, Any]) -> tuple[float, float] | None:
    """The (steering, speed) the host drove this step, when its command is in the event."""
    host = event.get("host")
    applied = host.get("applied") if isinstance(host, dict) else None
    if isinstance(applied, list | tuple) and len(applied) == 2:
        return _num(applied[0]), _num(applied[1])
    return None


def _laps_done(event: dict[str, Any]) -> int:
    return int(_num(event.get("laps")))


def lap_of_rows(telemetry: Sequence[dict[str, Any]]) -> list[tuple[int, bool]]:
    """(0-based lap, completes the lap) for every row: a row that raises ``laps`` ends its lap."""
    out: list[tuple[int, bool]] = []
    done_before = 0
    for event in telemetry:
        done = _laps_done(event)
        completes = done > done_before
        out.append((done_before if completes else done, completes))
        done_before = max(done, done_before)
    return out


def simtrace_rows(telemetry: Sequence[dict[str, Any]], route: Route | None = None) -> list[SimtraceRow]:
    track: Track | None = load_track(*route) if route is not None else None
    rows: list[SimtraceRow] = []
    steps: dict[int, int] = {}
    laps = lap_of_rows(telemetry)
    for index, (event, (lap, completes)) in enumerate(zip(telemetry, laps, strict=True)):
        steps[lap] = steps.get(lap, 0) + 1
        heading = _num(event.get("heading"))  # the host sends degrees
        x = _num(event.get("x")) + REFERENCE_OFFSET * math.cos(math.radians(heading))
        y = _num(event.get("y")) + REFERENCE_OFFSET * math.sin(math.radians(heading))
        applied = _applied(event)
        steer, throttle = applied if applied is not None else (_num(event.get("steer")), _num(event.get("speed")))
        paused = bool(event.get("penalty_remaining_ms"))
        status = "lap_complete" if completes else ("pause" if paused else "in_progress")
        if track is not None:
            closest = _closest(track, x, y, track.locate(x, y).closest_waypoints)
            track_len = track.length
        else:
            closest = int(_num(event.get("closest_waypoint")))
            track_len = _num(event.get("track_len"))
        rows.append(
            SimtraceRow(
                episode=lap,
                steps=float(steps[lap]),
                x=x,
                y=y,
                yaw=heading,
                steer=steer,
                throttle=throttle,
                action=-1,
                reward=_num(event.get("reward")),
                done=completes or index == len(telemetry) - 1,
                all_wheels_on_track=not paused,
                progress=100.0 if completes else _num(event.get("progress")),
                closest_waypoint=closest,
                track_len=track_len,
                tstamp=_num(event.get("t")),
                episode_status=status,
                pause_duration=_num(event.get("penalty_remaining_ms")) / 1000.0,
                obstacle_crash_counter=int(_num(event.get("collisions"))),
                wall_clock=None,  # the host's telemetry carries the run clock only
            )
        )
    return rows


def _closest(track: Track, x: float, y: float, pair: tuple[int, int]) -> int:
    """DeepRacer's simtrace ``closest_waypoint``: the nearer of the two closest waypoints."""
    prev, nxt = pair
    wps = track.waypoints
    d_prev = math.hypot(wps[prev][0] - x, wps[prev][1] - y)
    d_next = math.hypot(wps[nxt][0] - x, wps[nxt][1] - y)
    return int(prev if d_prev <= d_next else nxt)


def metrics_entries(telemetry: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One evaluation-metrics entry per lap driven (DeepRacer's evaluation metrics shape)."""
    laps: dict[int, list[tuple[dict[str, Any], bool]]] = {}
    for event, (lap, completes) in zip(telemetry, lap_of_rows(telemetry), strict=True):
        laps.setdefault(lap, []).append((event, completes))
    entries: list[dict[str, Any]] = []
    start_ms = 0
    before: dict[str, Any] = {}
    for lap in sorted(laps):
        rows = laps[lap]
        first = rows[0][0]
        last, completed = rows[-1]
        previous = before or first
        if completed:
            elapsed_ms = round(_num(last.get("last_lap_ms"), _num(last.get("t")) * 1000 - start_ms))
        else:
            elapsed_ms = round(_num(last.get("t")) * 1000) - start_ms
        entries.append(
            {
                "completion_percentage": 100 if completed else round(_num(last.get("progress"))),
                "metric_time": start_ms + elapsed_ms,
                "start_time": start_ms,
                "elapsed_time_in_milliseconds": elapsed_ms,
                "episode_status": "Lap complete" if completed else "Time up",
                "crash_count": int(_num(last.get("collisions")) - _num(previous.get("collisions"))),
                "immobilized_count": 0,
                "off_track_count": int(_num(last.get("off_track")) - _num(previous.get("off_track"))),
                "reversed_count": 0,
                "reset_count": int(_num(last.get("resets")) - _num(previous.get("resets"))),
                "trial": lap + 1,
            }
        )
        start_ms += elapsed_ms
        before = last
    return entries


def write_run_logs(
    folder: Path, telemetry: Sequence[dict[str, Any]], route: Route | None = None, reward_note: str | None = None
) -> None:
    """Write simtrace.csv and metrics.json; ``route`` (the race's track) gives closest_waypoint and
    track_len; ``reward_note`` (metrics.json's ``reward``) says how the reward column was filled."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (SIMTRACE + ".tmp")
    with tmp.open("w", newline="") as stream:
        SimtraceWriter(stream).write_rows(simtrace_rows(telemetry, route))
    tmp.replace(folder / SIMTRACE)
    tmp = folder / (METRICS + ".tmp")
    metrics: dict[str, Any] = {"metrics": metrics_entries(telemetry)}
    if reward_note is not None:
        metrics["reward"] = reward_note
    tmp.write_text(json.dumps(metrics))
    tmp.replace(folder / METRICS)
