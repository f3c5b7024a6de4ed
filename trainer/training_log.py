"""Training simtrace rows and metrics entries the way DeepRacer writes them.

What the community's tools (deepracer-utils) rely on:

* episodes are numbered from 0 across the whole training (metrics entries from 1, like DeepRacer's
  ``TrainingMetrics.json``);
* the first row of every episode is ``prepare`` and ``steps`` counts from 1.0;
* ``tstamp`` is a simulation clock that keeps running across episodes: episode times are the
  differences of ``tstamp`` within an episode;
* ``wall_clock`` is the host's time at each step, for the stability analysis;
* metrics ``start_time`` / ``metric_time`` are that same clock in milliseconds, so
  ``elapsed_time_in_milliseconds`` is the episode's simulated duration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from race_server.sim.simtrace import SimtraceRow
from trainer.metrics import training_entry
from trainer.rollout import Episode

RESET_GAP_S = 1.0 / 15.0  # the clock moves on by one step between an episode's end and the next start


def closest_waypoint(params: dict[str, Any]) -> int:
    """DeepRacer's simtrace ``closest_waypoint``: the nearer of the two closest waypoints."""
    prev, nxt = params["closest_waypoints"]
    wps = params["waypoints"]
    x, y = params["x"], params["y"]
    d = [math.hypot(wps[i][0] - x, wps[i][1] - y) for i in (prev, nxt)]
    return int(prev if d[0] <= d[1] else nxt)


def episode_duration(ep: Episode) -> float:
    """Simulated seconds from the prepare step to the last step."""
    if ep.params:
        return float(ep.params[-1]["sim_time"]) - float(ep.params[0]["sim_time"])
    return float(ep.metrics.get("elapsed_time_in_milliseconds", 0)) / 1000.0


def episode_progress(ep: Episode) -> float:
    if "completion_percentage" in ep.metrics:
        return float(ep.metrics["completion_percentage"])
    return float(ep.metrics.get("progress", 0.0))


def simtrace_rows(
    ep: Episode, rewards: NDArray[np.float64], episode: int, discrete: bool, clock: float = 0.0
) -> list[SimtraceRow]:
    """One row per step; ``episode`` is 0-based, ``clock`` the running clock at the episode start."""
    rows = []
    start = float(ep.params[0]["sim_time"]) if ep.params else 0.0
    for t, params in enumerate(ep.params):
        steer, speed = ep.action_values[t] if t < len(ep.action_values) else (0.0, 0.0)
        rows.append(
            SimtraceRow(
                episode=episode,
                steps=float(params["steps"]),
                x=float(params["x"]),
                y=float(params["y"]),
                yaw=float(params["heading"]),
                steer=float(steer),
                throttle=float(speed),
                action=int(ep.actions[t]) if discrete else -1,
                reward=float(rewards[t]),
                done=t == ep.length - 1,
                all_wheels_on_track=bool(params["all_wheels_on_track"]),
                progress=float(params["progress"]),
                closest_waypoint=closest_waypoint(params),
                track_len=float(params["track_length"]),
                tstamp=clock + float(params["sim_time"]) - start,
                episode_status=ep.statuses[t] or "in_progress",
                pause_duration=float(ep.pauses[t]),
                wall_clock=ep.wall_clock[t] if t < len(ep.wall_clock) else None,
            )
        )
    return rows


class TrainingClock:
    """One simulation clock that keeps running from episode to episode, in the order they are logged
    (DeepRacer's Gazebo clock never restarts; one clock per simtrace file, as one per worker)."""

    def __init__(self) -> None:
        self._next_start = 0.0

    def start(self) -> float:
        return self._next_start

    def finish(self, duration: float) -> float:
        """Record an episode of ``duration`` s starting at ``start()``; returns its end."""
        end = self._next_start + duration
        self._next_start = end + RESET_GAP_S
        return end


def metrics_entry(
    ep: Episode,
    rewards: NDArray[np.float64],
    *,
    start_s: float,
    episode: int,
    trial: int,
    phase: str,
) -> dict[str, Any]:
    """A ``TrainingMetrics.json`` entry; ``episode`` counts from 1 as DeepRacer's does."""
    progress = episode_progress(ep)
    status = ep.metrics.get("episode_status", "Lap complete" if progress >= 100 else "Off track")
    start_ms = round(start_s * 1000.0)
    return training_entry(
        reward_score=float(rewards.sum()),
        start_ms=start_ms,
        end_ms=start_ms + round(episode_duration(ep) * 1000.0),
        episode=episode,
        trial=trial,
        phase=phase,
        completion_percentage=progress,
        episode_status=str(status),
    )
