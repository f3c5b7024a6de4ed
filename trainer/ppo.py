"""Clipped PPO (discrete and continuous) with separate actor and critic stacks, as DeepRacer trains.

One ``update`` per iteration (``num_episodes_between_training`` whole episodes): GAE(λ = 0.95)
advantages, ``num_epochs`` passes of ``batch_size`` minibatches, ratio clip 0.2, an entropy bonus
``beta_entropy``, Huber or MSE value loss. Episodes cut by a time or step limit bootstrap from the
critic's value of their last observation. Rewards are divided by a running standard deviation of
the discounted return before the critic sees them (the user's reward scale varies by orders of
magnitude between reward functions; reported rewards stay unscaled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from race_server.models.hyperparameters import Hyperparameters
from trainer.networks import ObsSpec, PPOActorCritic, obs_to_tensors
from trainer.rollout import Episode

GAE_LAMBDA = 0.95
CLIP = 0.2
MAX_GRAD_NORM = 1.0
VALUE_CHUNK = 256


class ReturnScale:
    """Running variance of the discounted return (Welford), used to scale rewards."""

    def __init__(self) -> None:
        self.count = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, returns: NDArray[np.float64]) -> None:
        for value in returns:
            self.count += 1.0
            delta = float(value) - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (float(value) - self.mean)

    @property
    def std(self) -> float:
        if self.count < 2:
            return 1.0
        return max(float(np.sqrt(self.m2 / (self.count - 1.0))), 1e-4)

    def state(self) -> list[float]:
        return [self.count, self.mean, self.m2]

    def load(self, state: Sequence[float]) -> None:
        self.count, self.mean, self.m2 = (float(v) for v in state)


@dataclass(frozen=True)
class UpdateStats:
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    minibatches: int
    samples: int


def discounted_returns(rewards: NDArray[np.float64], gamma: float) -> NDArray[np.float64]:
    out = np.zeros_like(rewards)
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def gae(
    rewards: NDArray[np.float64], values: NDArray[np.float64], last_value: float, gamma: float, lam: float = GAE_LAMBDA
) -> NDArray[np.float64]:
    """Advantages of one episode; ``last_value`` is 0 after a termination, V(s_T) after a cut."""
    adv = np.zeros_like(rewards)
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        next_value = values[t + 1] if t + 1 < len(rewards) else last_value
        delta = rewards[t] + gamma * next_value - values[t]
        acc = delta + gamma * lam * acc
        adv[t] = acc
    return adv


def _concat_obs(parts: Sequence[dict[str, NDArray[Any]]]) -> dict[str, NDArray[Any]]:
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def _index(obs: dict[str, Tensor], idx: Tensor) -> dict[str, Tensor]:
    return {k: v[idx] for k, v in obs.items()}


class PPO:
    def __init__(
        self, spec: ObsSpec, network: str, n_actions: int | None, hp: Hyperparameters, *, seed: int = 0, **kw: Any
    ) -> None:
        torch.manual_seed(seed)
        self.hp = hp
        self.model = PPOActorCritic(spec, network, n_actions, **kw)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=hp.lr, eps=1e-5, fused=True)
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        self.scale = ReturnScale()

    @property
    def policy(self) -> nn.Module:
        return self.model

    def _values(self, obs: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
        n = len(next(iter(obs.values())))
        out = np.zeros(n)
        with torch.no_grad():
            for s in range(0, n, VALUE_CHUNK):
                chunk = obs_to_tensors({k: v[s : s + VALUE_CHUNK] for k, v in obs.items()})
                out[s : s + VALUE_CHUNK] = self.model.value(chunk).double().numpy()
        return out

    def update(self, episodes: Sequence[Episode], rewards: Sequence[NDArray[np.float64]]) -> UpdateStats:
        hp = self.hp
        gamma = hp.discount_factor
        for r in rewards:
            self.scale.update(discounted_returns(np.asarray(r, np.float64), gamma))
        obs = _concat_obs([e.obs for e in episodes])
        values = self._values(obs)
        cut = [e for e in episodes if e.truncated]
        last_values = np.zeros(0)
        if cut:
            last_values = self._values(_concat_obs([{k: v[None] for k, v in e.final_obs.items()} for e in cut]))
        advantages: list[NDArray[np.float64]] = []
        start = 0
        k = 0
        for ep, r in zip(episodes, rewards, strict=True):
            n = ep.length
            last = 0.0
            if ep.truncated:
                last = float(last_values[k])
                k += 1
            advantages.append(gae(np.asarray(r, np.float64) / self.scale.std, values[start : start + n], last, gamma))
            start += n
        adv = np.concatenate(advantages)
        returns = adv + values
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

        t_obs = obs_to_tensors(obs)
        actions = torch.as_tensor(np.concatenate([e.actions for e in episodes]))
        old_logp = torch.as_tensor(np.concatenate([e.log_probs for e in episodes]))
        t_adv = torch.as_tensor(adv, dtype=torch.float32)
        t_ret = torch.as_tensor(returns, dtype=torch.float32)
        n = len(t_adv)
        value_loss_fn: nn.Module = nn.HuberLoss() if hp.loss_type == "huber" else nn.MSELoss()
        totals = np.zeros(4)
        count = 0
        for _ in range(hp.num_epochs):
            order = self.rng.permutation(n)
            for s in range(0, n, hp.batch_size):
                idx = torch.as_tensor(order[s : s + hp.batch_size])
                mb = _index(t_obs, idx)
                dist = self.model.distribution(mb)
                logp = dist.log_prob(actions[idx])
                ratio = torch.exp(logp - old_logp[idx])
                a = t_adv[idx]
                policy_loss = -torch.min(ratio * a, ratio.clamp(1.0 - CLIP, 1.0 + CLIP) * a).mean()
                entropy = dist.entropy().mean()
                value_loss = value_loss_fn(self.model.value(mb), t_ret[idx])
                loss = policy_loss - hp.beta_entropy * entropy + value_loss
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), MAX_GRAD_NORM)
                self.optimizer.step()
                with torch.no_grad():
                    kl = float(((ratio - 1.0) - torch.log(ratio)).mean())
                totals += [float(policy_loss.detach()), float(value_loss.detach()), float(entropy.detach()), kl]
                count += 1
        mean = totals / max(count, 1)
        return UpdateStats(float(mean[0]), float(mean[1]), float(mean[2]), float(mean[3]), count, n)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "return_scale": self.scale.state(),
            "rng": _rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scale.load(state["return_scale"])
        self.rng = _rng_from_state(state["rng"])


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """PCG64 state as plain ints/str (loadable with ``weights_only=True``)."""
    st = rng.bit_generator.state
    return {
        "state": int(st["state"]["state"]),
        "inc": int(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def _rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(state["state"]), "inc": int(state["inc"])},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }
    return rng
