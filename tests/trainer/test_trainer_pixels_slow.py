"""PPO from 160x120 pixels on reinvent_base beats the random policy's progress threefold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from race_server.models.hyperparameters import parse_hyperparameters
from race_server.sim.env import DeepRacerEnv
from race_server.sim.episode import EpisodeConfig
from race_server.sim.metadata import default_model_metadata
from trainer.bench import BENCH_HYPERPARAMETERS, CENTRE_LINE_REWARD
from trainer.config import StopConditions, TrainWorld
from trainer.train import IterationReport, Trainer, TrainJob, TrainOptions, in_process_reward


def _random_progress(episodes: int) -> float:
    env = DeepRacerEnv(world=TrainWorld().world_config(EpisodeConfig(mode="training"), seed=1))
    rng = np.random.default_rng(1)
    out = []
    env.reset(seed=1)
    for _ in range(episodes):
        done = False
        info: dict[str, object] = {}
        while not done:
            _, _, term, trunc, info = env.step(int(rng.integers(10)))
            done = term or trunc
        out.append(float(info["metrics"]["completion_percentage"]))  # type: ignore[index]
        env.reset()
    return float(np.mean(out))


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_ppo_from_pixels_triples_random_progress(tmp_path: Path) -> None:
    baseline = _random_progress(40)
    assert 2.0 < baseline < 20.0
    job = TrainJob(
        default_model_metadata(),
        parse_hyperparameters(BENCH_HYPERPARAMETERS),
        CENTRE_LINE_REWARD,
        stop=StopConditions(max_minutes=9.0),
    )
    trainer = Trainer(
        job,
        tmp_path / "m",
        in_process_reward(CENTRE_LINE_REWARD),
        TrainOptions(workers=2, envs_per_worker=4, export_onnx=False),
    )
    reports: list[IterationReport] = []

    def keep_going(report: IterationReport) -> bool:
        reports.append(report)
        recent = [r.mean_progress for r in reports[-2:]]
        return len(reports) < 2 or float(np.mean(recent)) < 3.0 * baseline

    trainer.run(keep_going)
    assert float(np.mean([r.mean_progress for r in reports[-2:]])) >= 3.0 * baseline
