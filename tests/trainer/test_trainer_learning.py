"""PPO (discrete, continuous) and SAC learn a tiny env; same seed -> bit-identical first update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from trainer_envs import (
    CONTINUOUS_METADATA,
    DISCRETE_METADATA,
    EPISODE_STEPS,
    SAC_METADATA,
    continuous_env,
    discrete_env,
)

from race_server.models.hyperparameters import parse_hyperparameters
from trainer.config import StopConditions
from trainer.ppo import gae
from trainer.train import IterationReport, Trainer, TrainJob, TrainOptions

SMALL = {"vector_dense": (32, 32)}


def _trainer(
    folder: Path, metadata: dict[str, Any], hp: dict[str, Any], episodes: int, factory: Any, **options: Any
) -> Trainer:
    algorithm = metadata["training_algorithm"]
    job = TrainJob(metadata, parse_hyperparameters(hp, algorithm), "", stop=StopConditions(max_episodes=episodes))
    opts = TrainOptions(workers=0, envs_per_worker=2, network_kwargs=SMALL, export_onnx=False, **options)
    return Trainer(job, folder, None, opts, env_factory=factory)


def _rewards(trainer: Trainer) -> list[float]:
    reports: list[IterationReport] = []

    def record(report: IterationReport) -> bool:
        reports.append(report)
        return True

    trainer.run(record)
    return [r.mean_reward for r in reports]


def test_discrete_ppo_learns(tmp_path: Path) -> None:
    hp = {"lr": 1e-3, "num_epochs": 4, "batch_size": 64, "num_episodes_between_training": 10, "discount_factor": 0.9}
    rewards = _rewards(_trainer(tmp_path, DISCRETE_METADATA, hp, 300, discrete_env))
    assert np.mean(rewards[:2]) < 0.7 * EPISODE_STEPS  # random play earns about half
    assert np.mean(rewards[-3:]) > 0.9 * EPISODE_STEPS


def test_continuous_ppo_learns(tmp_path: Path) -> None:
    hp = {
        "lr": 1e-3,
        "num_epochs": 5,
        "batch_size": 64,
        "num_episodes_between_training": 10,
        "discount_factor": 0.5,
        "beta_entropy": 0.0,
    }
    rewards = _rewards(_trainer(tmp_path, CONTINUOUS_METADATA, hp, 500, continuous_env))
    assert np.mean(rewards[-3:]) > np.mean(rewards[:2]) + 1.0
    assert np.mean(rewards[-3:]) > 0.85 * EPISODE_STEPS


def test_sac_learns(tmp_path: Path) -> None:
    hp = {"lr": 1e-3, "batch_size": 64, "num_episodes_between_training": 1, "discount_factor": 0.5, "sac_alpha": 0.01}
    trainer = _trainer(tmp_path, SAC_METADATA, hp, 60, continuous_env, sac_kwargs={"warmup_steps": 64})
    rewards = _rewards(trainer)
    assert np.mean(rewards[-10:]) > np.mean(rewards[:8]) + 1.0
    assert np.mean(rewards[-10:]) > 0.85 * EPISODE_STEPS


def _params_after_one_update(folder: Path, metadata: dict[str, Any], factory: Any, workers: int) -> list[torch.Tensor]:
    hp = {"num_epochs": 3, "batch_size": 32, "num_episodes_between_training": 5}
    algorithm = metadata["training_algorithm"]
    if algorithm == "sac":
        hp["num_episodes_between_training"] = 1
    job = TrainJob(metadata, parse_hyperparameters(hp, algorithm), "", stop=StopConditions(max_episodes=5))
    opts = TrainOptions(
        workers=workers,
        envs_per_worker=2,
        seed=7,
        network_kwargs=SMALL,
        export_onnx=False,
        sac_kwargs={"warmup_steps": 8},
    )
    trainer = Trainer(job, folder, None, opts, env_factory=factory)
    trainer.run(lambda r: False)  # stop after the first iteration
    return [p.detach().clone() for p in trainer.agent.policy.parameters()]


@pytest.mark.parametrize(
    ("metadata", "factory"),
    [(DISCRETE_METADATA, discrete_env), (CONTINUOUS_METADATA, continuous_env), (SAC_METADATA, continuous_env)],
    ids=["ppo-discrete", "ppo-continuous", "sac"],
)
def test_same_seed_same_first_update(tmp_path: Path, metadata: dict[str, Any], factory: Any) -> None:
    a = _params_after_one_update(tmp_path / "a", metadata, factory, workers=0)
    b = _params_after_one_update(tmp_path / "b", metadata, factory, workers=0)
    init = _trainer(
        tmp_path / "c",
        metadata,
        {"num_episodes_between_training": 1} if metadata is SAC_METADATA else {},
        1,
        factory,
        seed=7,
    )
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # the update changed something (the comparison is not between two untouched initialisations)
    assert not all(torch.equal(x, y) for x, y in zip(a, init.agent.policy.parameters(), strict=True))


def test_worker_processes_are_deterministic(tmp_path: Path) -> None:
    a = _params_after_one_update(tmp_path / "a", DISCRETE_METADATA, discrete_env, workers=2)
    b = _params_after_one_update(tmp_path / "b", DISCRETE_METADATA, discrete_env, workers=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_gae_bootstraps_cut_episodes_only() -> None:
    rewards = np.array([1.0, 1.0])
    values = np.array([0.0, 0.0])
    cut = gae(rewards, values, last_value=10.0, gamma=0.5, lam=1.0)
    ended = gae(rewards, values, last_value=0.0, gamma=0.5, lam=1.0)
    np.testing.assert_allclose(cut, [1.0 + 0.5 * 6.0, 1.0 + 0.5 * 10.0])
    np.testing.assert_allclose(ended, [1.5, 1.0])
