"""Evaluation: N trials of the greedy policy, DeepRacer rules (start line, penalties, resets)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from race_server.sim.env import DeepRacerEnv
from race_server.sim.episode import EpisodeConfig
from trainer.config import ConfigError, TrainWorld
from trainer.metrics import evaluation_entry, write_evaluation_metrics
from trainer.networks import obs_to_tensors

COUNT_KEYS = ("crash_count", "immobilized_count", "off_track_count", "reversed_count", "reset_count")


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
    try:
        obs, info = env.reset(seed=s.seed)
        episodes = 1 if s.continuous else s.trials
        for e in range(episodes):
            if e > 0:
                obs, info = env.reset()
            start_ms = int(time.time() * 1000)
            done = False
            laps_seen = 0
            lap_start_counts = dict.fromkeys(COUNT_KEYS, 0)
            while not done:
                obs, _, terminated, truncated, info = env.step(greedy_action(policy, obs))
                if on_step is not None:
                    on_step(env)
                done = bool(terminated or truncated)
                m = info["metrics"]
                counts = {k: int(m[k]) for k in COUNT_KEYS}
                if s.continuous and len(m["lap_times"]) > laps_seen:
                    laps_seen = len(m["lap_times"])
                    end_ms = int(time.time() * 1000)
                    trials.append(
                        TrialResult(
                            laps_seen,
                            m["lap_times"][-1],
                            100.0,
                            "Lap complete",
                            {k: counts[k] - lap_start_counts[k] for k in COUNT_KEYS},
                            int(m["steps"]),
                            start_ms,
                            end_ms,
                        )
                    )
                    lap_start_counts, start_ms = counts, end_ms
            m = info["metrics"]
            if not s.continuous:
                lap = m["lap_times"][0] if m["lap_times"] else None
                trials.append(
                    TrialResult(
                        e + 1,
                        lap,
                        float(m["completion_percentage"]),
                        str(m["episode_status"]),
                        {k: int(m[k]) for k in COUNT_KEYS},
                        int(m["steps"]),
                        start_ms,
                        int(time.time() * 1000),
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
                        start_ms,
                        int(time.time() * 1000),
                    )
                )
    finally:
        env.close()
    return EvaluationResult(trials)
