"""Tiny learnable envs with vector observations (module-level so worker processes can import them)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

DISCRETE_METADATA: dict[str, Any] = {
    "action_space": [{"steering_angle": -10.0, "speed": 1.0}, {"steering_angle": 10.0, "speed": 1.0}],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
    "version": "5",
}
CONTINUOUS_METADATA: dict[str, Any] = {
    "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 2.0}},
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "continuous",
    "version": "5",
}
SAC_METADATA: dict[str, Any] = {**CONTINUOUS_METADATA, "training_algorithm": "sac"}
EPISODE_STEPS = 8


class SignEnv(gym.Env[NDArray[np.float32], Any]):
    """Observe x ~ U(-1, 1)^2; action 1 pays 1 when x0 > 0, action 0 when x0 <= 0. Random play
    earns half of ``EPISODE_STEPS``; episodes are cut by a time limit (truncated, not terminated)."""

    def __init__(self, continuous: bool = False) -> None:
        self.continuous = continuous
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space: gym.Space[Any] = (
            gym.spaces.Box(-1.0, 1.0, (2,), np.float32) if continuous else gym.spaces.Discrete(2)
        )
        self._x = np.zeros(2, np.float32)
        self._t = 0

    def _draw(self) -> NDArray[np.float32]:
        self._x = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self._x.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._draw(), {}

    def reward(self, action: Any) -> float:
        if self.continuous:
            # best action: a = (x1, -x0); reward in [0, 1]
            target = np.array([self._x[1], -self._x[0]])
            err = np.clip(np.asarray(action, np.float64), -1, 1) - target
            return float(1.0 - 0.25 * np.sum(err**2))
        return 1.0 if int(action) == int(self._x[0] > 0) else 0.0

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        r = self.reward(action)
        self._t += 1
        return (
            self._draw(),
            r,
            False,
            self._t >= EPISODE_STEPS,
            {"metrics": {"completion_percentage": 100.0 * self._t / EPISODE_STEPS}},
        )


def discrete_env(index: int) -> gym.Env[Any, Any]:
    return SignEnv(continuous=False)


def continuous_env(index: int) -> gym.Env[Any, Any]:
    return SignEnv(continuous=True)
