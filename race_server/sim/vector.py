"""Many DeepRacer envs in one process, stepped synchronously (gymnasium's ``SyncVectorEnv``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from gymnasium.vector import AutoresetMode, SyncVectorEnv

from race_server.sim.env import DeepRacerEnv, RewardFunction, WorldConfig, _world_config


def env_factories(
    n: int,
    model_metadata: Mapping[str, Any] | None = None,
    world: WorldConfig | Mapping[str, Any] | None = None,
    reward_function: RewardFunction | None = None,
) -> list[Callable[[], DeepRacerEnv]]:
    """``n`` env constructors; env ``i`` gets world seed ``seed + i`` so layouts differ."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    base = _world_config(world)

    def factory(i: int) -> Callable[[], DeepRacerEnv]:
        seed = None if base.seed is None else base.seed + i
        config = dataclasses.replace(base, seed=seed)
        return lambda: DeepRacerEnv(model_metadata, config, reward_function)

    return [factory(i) for i in range(n)]


def make_vector_env(
    n: int,
    model_metadata: Mapping[str, Any] | None = None,
    world: WorldConfig | Mapping[str, Any] | None = None,
    reward_function: RewardFunction | None = None,
) -> SyncVectorEnv:
    """``n`` envs stepped in turn in this process; finished envs reset on the same step
    (``AutoresetMode.SAME_STEP``: the final observation and info are in ``info["final_obs"]`` /
    ``info["final_info"]``), which suits rollout collection with time-limit bootstrapping."""
    return SyncVectorEnv(
        env_factories(n, model_metadata, world, reward_function),
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
