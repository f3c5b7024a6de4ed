"""Evaluation: N trials of the greedy policy, DeepRacer rules (start line, penalties, resets).

Times are simulated, as in DeepRacer's evaluation logs: a trial's ``elapsed_time_in_milliseconds``
is its lap time (or its simulated duration when the lap was not completed), and ``start_time`` /
``metric_time`` read a simulation clock that keeps running from trial to trial. The result carries
the evaluation simtrace (``evaluation-simtrace/0-iteration.csv`` in DeepRacer's layout).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from race_server.sim.env import DeepRacerEnv
from race_server.sim.episode import EpisodeConfig
from race_server.sim.simtrace import SimtraceRow, SimtraceWriter
from trainer.config import ConfigError, TrainWorld
from trainer.metrics import evaluation_entry, write_evaluation_metrics
from trainer.networks import obs_to_tensors
from trainer.training_log import closest_waypoint

COUNT_KEYS = ("crash_count", "immobilized_count", "off_track_count", "reversed_count", "reset_count")
RESET_GAP_S = 1.0 / 15.0  # the clock moves on by one step between trials


@dataclass(frozen=True)
class EvaluationSettings:
    trials: int = 3
    continuous: bool = False  # laps back to back in one episode
    resets: int | None = 0  # 0: an off-track ends the trial; None: unlimited
    off_track_penalty: float = 3.0
    collision_penalty: float = 3.0
    max_steps: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.trials <= 10:
            raise ConfigError(f"trials = {self.trials}; allowed: 1..10")


@dataclass(frozen=True)
class TrialResult:
    trial: int
    lap_time: float | None  # seconds, None when the lap was not completed
    completion_percentage: float
    status: str
    counts: dict[str, int]
    steps: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class EvaluationResult:
    trials: list[TrialResult] = field(default_factory=list)
    simtrace: list[SimtraceRow] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(1 for t in self.trials if t.lap_time is not None)

    @property
    def best_lap(self) -> float | None:
        laps = [t.lap_time for t in self.trials if t.lap_time is not None]
        return min(laps) if laps else None

    @property
    def mean_progress(self) -> float:
        return float(np.mean([t.completion_percentage for t in self.trials])) if self.trials else 0.0

    def metrics_entries(self) -> list[dict[str, Any]]:
        return [
            evaluation_entry(
                trial=t.trial,
                start_ms=t.start_ms,
                end_ms=t.end_ms,
                completion_percentage=t.completion_percentage,
                episode_status=t.status,
                counts=t.counts,
            )
            for t in self.trials
        ]

    def write_metrics(self, path: Path) -> None:
        write_evaluation_metrics(path, self.metrics_entries())

    def write_simtrace(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="") as stream:
            SimtraceWriter(stream).write_rows(self.simtrace)
        tmp.replace(path)


def greedy_action(policy: nn.Module, obs: dict[str, Any]) -> Any:
    batch = obs_to_tensors({k: np.asarray(v)[None] for k, v in obs.items()})
    with torch.no_grad():
        out = policy.greedy(batch)  # type: ignore[operator]
    value = out[0].numpy()
    return int(value) if value.ndim == 0 else value.astype(np.float32)


def evaluate(
    policy: nn.Module,
    metadata_raw: dict[str, Any],
    world: TrainWorld,
    settings: EvaluationSettings | None = None,
    reward_fn: Callable[[dict[str, Any]], Any] | None = None,
    on_step: Callable[[DeepRacerEnv], None] | None = None,
) -> EvaluationResult:
    s = settings or EvaluationSettings()
    episode = EpisodeConfig(
        mode="evaluation",
        resets=s.resets,
        off_track_penalty=s.off_track_penalty,
        collision_penalty=s.collision_penalty,
        continuous_laps=s.continuous,
        max_laps=s.trials if s.continuous else None,
        max_steps=s.max_steps * (s.trials if s.continuous else 1),
    )
    env = DeepRacerEnv(metadata_raw, world.world_config(episode, seed=s.seed), reward_fn)
    policy.eval()
    trials: list[TrialResult] = []
    rows: list[SimtraceRow] = []
    clock = 0.0  # simulated seconds since the evaluation began
    discrete = isinstance(env.action_space, gym.spaces.Discrete)

    def ms(seconds: float) -> int:
        return round(seconds * 1000.0)

    try:
        obs, info = env.reset(seed=s.seed)
        episodes = 1 if s.continuous else s.trials
        for e in range(episodes):
            if e > 0:
                obs, info = env.reset()
            episode_start = clock
            lap_start = clock
            done = False
            laps_seen = 0
            lap_start_counts = dict.fromkeys(COUNT_KEYS, 0)
            while not done:
                action = greedy_action(policy, obs)
                obs, reward, terminated, truncated, info = env.step(action)
                if on_step is not None:
                    on_step(env)
                done = bool(terminated or truncated)
                params = info["params"]
                now = episode_start + float(params["sim_time"])
                rows.append(_row(e, params, info, action if discrete else -1, float(reward), done, now))
                m = info["metrics"]
                counts = {k: int(m[k]) for k in COUNT_KEYS}
                if s.continuous and len(m["lap_times"]) > laps_seen:
                    laps_seen = len(m["lap_times"])
                    lap_time = float(m["lap_times"][-1])
                    trials.append(
                        TrialResult(
                            laps_seen,
                            lap_time,
                            100.0,
                            "Lap complete",
                            {k: counts[k] - lap_start_counts[k] for k in COUNT_KEYS},
                            int(m["steps"]),
                            ms(lap_start),
                            ms(lap_start + lap_time),
                        )
                    )
                    lap_start_counts, lap_start = counts, lap_start + lap_time
            m = info["metrics"]
            end = episode_start + float(m["elapsed_time_in_milliseconds"]) / 1000.0
            if not s.continuous:
                lap = float(m["lap_times"][0]) if m["lap_times"] else None
                trials.append(
                    TrialResult(
                        e + 1,
                        lap,
                        float(m["completion_percentage"]),
                        str(m["episode_status"]),
                        {k: int(m[k]) for k in COUNT_KEYS},
                        int(m["steps"]),
                        ms(episode_start),
                        ms(episode_start + lap) if lap is not None else ms(end),
                    )
                )
            elif laps_seen < s.trials:
                counts = {k: int(m[k]) - lap_start_counts[k] for k in COUNT_KEYS}
                trials.append(
                    TrialResult(
                        laps_seen + 1,
                        None,
                        float(m["completion_percentage"]),
                        str(m["episode_status"]),
                        counts,
                        int(m["steps"]),
                        ms(lap_start),
                        ms(end),
                    )
                )
            clock = end + RESET_GAP_S
    finally:
        env.close()
    return EvaluationResult(trials, rows)


def _row(
    episode: int, params: dict[str, Any], info: dict[str, Any], action: Any, reward: float, done: bool, now: float
) -> SimtraceRow:
    steer, speed = info["action"]
    x, y = params["x"], params["y"]
    return SimtraceRow(
        episode=episode,
        steps=float(params["steps"]),
        x=float(x),
        y=float(y),
        yaw=float(params["heading"]),
        steer=float(steer),
        throttle=float(speed),
        action=int(action) if not isinstance(action, np.ndarray) else -1,
        reward=reward,
        done=done,
        all_wheels_on_track=bool(params["all_wheels_on_track"]),
        progress=float(params["progress"]),
        closest_waypoint=closest_waypoint(params),
        track_len=float(params["track_length"]),
        tstamp=now,
        episode_status=str(info["status"]),
        pause_duration=float(info["pause_duration"]),
        wall_clock=time.time(),
    )
