"""Soft actor-critic for continuous action spaces (DeepRacer trains it after every episode).

Twin Q networks with Polyak-averaged targets, a squashed-Gaussian actor and a fixed entropy
temperature ``sac_alpha``. Episodes cut by a time or step limit keep bootstrapping (only
terminations zero the next value).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from race_server.models.hyperparameters import Hyperparameters
from trainer.networks import ObsSpec, QNetwork, SACActor, obs_to_tensors
from trainer.ppo import _rng_from_state, _rng_state
from trainer.rollout import Episode

TAU = 0.005


class ReplayBuffer:
    """Ring buffer of transitions; observations keep their dtype (uint8 images stay small)."""

    def __init__(self, spec: ObsSpec, capacity: int) -> None:
        shapes = spec.as_dict()
        self.capacity = capacity
        self.obs: dict[str, NDArray[Any]] = {k: np.zeros((capacity, *s), _dtype(s)) for k, s in shapes.items()}
        self.next_obs: dict[str, NDArray[Any]] = {k: np.zeros((capacity, *s), _dtype(s)) for k, s in shapes.items()}
        self.actions = np.zeros((capacity, 2), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.size = 0
        self.pos = 0

    def add_episode(self, ep: Episode, rewards: NDArray[np.float64]) -> None:
        next_obs = ep.next_obs()
        for t in range(ep.length):
            i = self.pos
            for k in self.obs:
                self.obs[k][i] = ep.obs[k][t]
                self.next_obs[k][i] = next_obs[k][t]
            self.actions[i] = np.clip(ep.actions[t], -1.0, 1.0)
            self.rewards[i] = rewards[t]
            self.dones[i] = 1.0 if (ep.terminated and t == ep.length - 1) else 0.0
            self.pos = (self.pos + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[dict[str, Tensor], ...]:
        idx = rng.integers(0, self.size, n)
        obs = obs_to_tensors({k: v[idx] for k, v in self.obs.items()})
        nxt = obs_to_tensors({k: v[idx] for k, v in self.next_obs.items()})
        rest = {
            "actions": torch.as_tensor(self.actions[idx]),
            "rewards": torch.as_tensor(self.rewards[idx]),
            "dones": torch.as_tensor(self.dones[idx]),
        }
        return obs, nxt, rest


def _dtype(shape: tuple[int, ...]) -> type:
    return np.uint8 if len(shape) == 3 else np.float32


@dataclass(frozen=True)
class SACStats:
    q_loss: float
    policy_loss: float
    updates: int
    samples: int


class SAC:
    def __init__(
        self,
        spec: ObsSpec,
        network: str,
        hp: Hyperparameters,
        *,
        seed: int = 0,
        buffer_capacity: int = 10_000,
        updates_per_step: float = 1.0,
        warmup_steps: int = 256,
        **kw: Any,
    ) -> None:
        torch.manual_seed(seed)
        self.hp = hp
        self.actor = SACActor(spec, network, **kw)
        self.q1 = QNetwork(spec, network, **kw)
        self.q2 = QNetwork(spec, network, **kw)
        self.q1_target = copy.deepcopy(self.q1)
        self.q2_target = copy.deepcopy(self.q2)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=hp.lr)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=hp.lr)
        self.buffer = ReplayBuffer(spec, buffer_capacity)
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        self.updates_per_step = updates_per_step
        self.warmup_steps = warmup_steps

    @property
    def policy(self) -> nn.Module:
        return self.actor

    def update(self, episodes: Sequence[Episode], rewards: Sequence[NDArray[np.float64]]) -> SACStats:
        steps = 0
        for ep, r in zip(episodes, rewards, strict=True):
            self.buffer.add_episode(ep, r)
            steps += ep.length
        if self.buffer.size < min(self.warmup_steps, self.buffer.capacity):
            return SACStats(0.0, 0.0, 0, steps)
        n_updates = max(1, int(steps * self.updates_per_step))
        gamma, alpha = self.hp.discount_factor, self.hp.sac_alpha
        q_total = pi_total = 0.0
        for _ in range(n_updates):
            obs, nxt, rest = self.buffer.sample(self.rng, self.hp.batch_size)
            with torch.no_grad():
                next_a, next_logp = self.actor.sample(nxt)
                target_q = torch.min(self.q1_target(nxt, next_a), self.q2_target(nxt, next_a)) - alpha * next_logp
                target = rest["rewards"] + gamma * (1.0 - rest["dones"]) * target_q
            q_loss = (self.q1(obs, rest["actions"]) - target).pow(2).mean() + (
                self.q2(obs, rest["actions"]) - target
            ).pow(2).mean()
            self.q_opt.zero_grad()
            q_loss.backward()
            self.q_opt.step()
            action, logp = self.actor.sample(obs)
            q = torch.min(self.q1(obs, action), self.q2(obs, action))
            pi_loss = (alpha * logp - q).mean()
            self.actor_opt.zero_grad()
            pi_loss.backward()
            self.actor_opt.step()
            with torch.no_grad():
                for net, target_net in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
                    for p, tp in zip(net.parameters(), target_net.parameters(), strict=True):
                        tp.mul_(1.0 - TAU).add_(p, alpha=TAU)
            q_total += float(q_loss.detach())
            pi_total += float(pi_loss.detach())
        return SACStats(q_total / n_updates, pi_total / n_updates, n_updates, steps)

    def state_dict(self) -> dict[str, Any]:
        # the replay buffer is not saved: a resumed job refills it (DeepRacer does the same)
        return {
            "model": self.actor.state_dict(),
            "q1": self.q1.state_dict(),
            "q2": self.q2.state_dict(),
            "q1_target": self.q1_target.state_dict(),
            "q2_target": self.q2_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "q_opt": self.q_opt.state_dict(),
            "rng": _rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["model"])
        for key in ("q1", "q2", "q1_target", "q2_target"):
            getattr(self, key).load_state_dict(state[key])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.q_opt.load_state_dict(state["q_opt"])
        self.rng = _rng_from_state(state["rng"])
