"""Episode collection in parallel worker processes, each stepping several envs in lock step.

Workers hold the learner's policy module in shared memory (``share_memory()``), so a
synchronous learner that updates its parameters in place needs no weight transfer. Each worker
samples actions with its own ``numpy.random.Generator``; a worker's episode quota is fixed per
call, so the same seed gives the same episodes whatever the timing.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
import torch.multiprocessing as mp
from numpy.typing import NDArray

from race_server.lifeline import bind_to_parent
from trainer.networks import obs_to_tensors

EnvFactory = Callable[[int], gym.Env[Any, Any]]  # env index -> env; must pickle for worker processes


class Policy(Protocol):
    def act_distribution(self, obs: dict[str, torch.Tensor]) -> tuple[NDArray[Any], NDArray[Any]]:
        """(means or probabilities, log-stds or empty) for a batch, as numpy."""
        ...


@dataclass
class Episode:
    obs: dict[str, NDArray[Any]]  # (T, ...) observation before each action
    actions: NDArray[Any]  # (T,) int64 or (T, 2) float32 in [-1, 1]
    log_probs: NDArray[np.float32]
    rewards: NDArray[np.float64]  # the env's rewards (the trainer may recompute them from params)
    final_obs: dict[str, NDArray[Any]]  # observation after the last step
    terminated: bool
    truncated: bool
    params: list[dict[str, Any]] = field(default_factory=list)  # reward params per step (DeepRacer envs)
    statuses: list[str] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)
    action_values: list[tuple[float, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    env_index: int = 0

    @property
    def length(self) -> int:
        return len(self.log_probs)

    def next_obs(self) -> dict[str, NDArray[Any]]:
        return {k: np.concatenate([v[1:], self.final_obs[k][None]], axis=0) for k, v in self.obs.items()}


def sample_actions(
    policy: Any, obs: dict[str, NDArray[Any]], rng: np.random.Generator, greedy: bool
) -> tuple[NDArray[Any], NDArray[np.float32]]:
    """Sample from the policy with numpy's generator (torch's global RNG stays untouched)."""
    with torch.no_grad():
        out, log_std = policy.act_distribution(obs_to_tensors(obs))
    if log_std.size == 0:  # discrete: out holds probabilities
        probs = out.astype(np.float64)
        if greedy:
            idx = probs.argmax(axis=1)
        else:
            u = rng.random(len(probs))[:, None]
            idx = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1)
        logp = np.log(np.maximum(probs[np.arange(len(idx)), idx], 1e-12))
        return idx.astype(np.int64), logp.astype(np.float32)
    squash = bool(getattr(policy, "squashed", False))
    if greedy:
        mean = np.tanh(out) if squash else out
        return mean.astype(np.float32), np.zeros(len(out), np.float32)
    eps = rng.standard_normal(out.shape)
    std = np.exp(log_std)
    action = out + std * eps
    if squash:
        # SAC recomputes log-probabilities at update time; only the action matters here
        return np.tanh(action).astype(np.float32), np.zeros(len(out), np.float32)
    logp = (-0.5 * eps**2 - log_std - 0.5 * np.log(2.0 * np.pi)).sum(axis=1)
    return action.astype(np.float32), logp.astype(np.float32)


class _Builder:
    def __init__(self, env_index: int) -> None:
        self.env_index = env_index
        self.obs: list[dict[str, NDArray[Any]]] = []
        self.actions: list[NDArray[Any]] = []
        self.log_probs: list[float] = []
        self.rewards: list[float] = []
        self.params: list[dict[str, Any]] = []
        self.statuses: list[str] = []
        self.pauses: list[float] = []
        self.action_values: list[tuple[float, float]] = []

    def finish(
        self, final_obs: dict[str, NDArray[Any]], terminated: bool, truncated: bool, info: dict[str, Any]
    ) -> Episode:
        keys = self.obs[0].keys()
        return Episode(
            obs={k: np.stack([o[k] for o in self.obs]) for k in keys},
            actions=np.stack(self.actions),
            log_probs=np.asarray(self.log_probs, np.float32),
            rewards=np.asarray(self.rewards, np.float64),
            final_obs=final_obs,
            terminated=terminated,
            truncated=truncated,
            params=self.params,
            statuses=self.statuses,
            pauses=self.pauses,
            action_values=self.action_values,
            metrics=dict(info.get("metrics", {})),
            env_index=self.env_index,
        )


def _as_obs(obs: Any) -> dict[str, NDArray[Any]]:
    if isinstance(obs, dict):
        return {k: np.asarray(v) for k, v in obs.items()}
    return {"VECTOR": np.asarray(obs, dtype=np.float32)}


class EnvGroup:
    """Several envs stepped in lock step with one batched policy forward per step."""

    def __init__(self, factory: EnvFactory, env_indices: Sequence[int], seed: int) -> None:
        self.envs = [factory(i) for i in env_indices]
        self.indices = list(env_indices)
        self.seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(max(env_indices) + 1)]
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 7919, *env_indices]))
        self._seeded = [False] * len(self.envs)

    def _reset(self, j: int) -> dict[str, NDArray[Any]]:
        if self._seeded[j]:
            obs, _ = self.envs[j].reset()
        else:
            obs, _ = self.envs[j].reset(seed=self.seeds[self.indices[j]])
            self._seeded[j] = True
        return _as_obs(obs)

    def collect(self, policy: Any, episodes: int, greedy: bool) -> list[Episode]:
        out: list[Episode] = []
        started = 0
        current: list[dict[str, NDArray[Any]] | None] = [None] * len(self.envs)
        builders: list[_Builder | None] = [None] * len(self.envs)
        for j in range(len(self.envs)):
            if started < episodes:
                current[j] = self._reset(j)
                builders[j] = _Builder(self.indices[j])
                started += 1
        while any(b is not None for b in builders):
            active = [j for j, b in enumerate(builders) if b is not None]
            obs_list = [current[j] for j in active]
            first = obs_list[0]
            assert first is not None
            batch = {k: np.stack([o[k] for o in obs_list if o is not None]) for k in first}
            actions, logps = sample_actions(policy, batch, self.rng, greedy)
            for n, j in enumerate(active):
                b = builders[j]
                obs_j = current[j]
                assert b is not None and obs_j is not None
                env = self.envs[j]
                nobs, reward, terminated, truncated, info = env.step(actions[n])
                b.obs.append(obs_j)
                b.actions.append(actions[n])
                b.log_probs.append(float(logps[n]))
                b.rewards.append(float(reward))
                if "params" in info:
                    b.params.append(info["params"])
                    b.statuses.append(str(info.get("status", "")))
                    b.pauses.append(float(info.get("pause_duration", 0.0)))
                    steer, speed = info.get("action", (0.0, 0.0))
                    b.action_values.append((float(steer), float(speed)))
                current[j] = _as_obs(nobs)
                if terminated or truncated:
                    out.append(b.finish(current[j], bool(terminated), bool(truncated), info))  # type: ignore[arg-type]
                    if started < episodes:
                        current[j] = self._reset(j)
                        builders[j] = _Builder(self.indices[j])
                        started += 1
                    else:
                        builders[j] = None
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker_main(
    conn: multiprocessing.connection.Connection,
    factory: EnvFactory,
    indices: list[int],
    seed: int,
    policy: Any,
    parent_pid: int,
) -> None:
    bind_to_parent(parent_pid)
    torch.set_num_threads(1)
    group = EnvGroup(factory, indices, seed)
    try:
        while True:
            msg = conn.recv()
            if msg[0] == "close":
                break
            _, episodes, greedy = msg
            try:
                conn.send(("ok", group.collect(policy, episodes, greedy)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        group.close()
        conn.close()


class RolloutError(RuntimeError):
    """A worker failed while collecting episodes."""


class RolloutPool:
    """``workers`` processes x ``envs_per_worker`` envs; ``workers=0`` collects in this process."""

    def __init__(
        self, factory: EnvFactory, policy: torch.nn.Module, *, workers: int, envs_per_worker: int, seed: int
    ) -> None:
        if workers < 0 or envs_per_worker < 1:
            raise ValueError(f"workers must be >= 0 and envs_per_worker >= 1, got {workers}, {envs_per_worker}")
        self.policy = policy
        self.workers = workers
        self._procs: list[Any] = []
        self._conns: list[multiprocessing.connection.Connection] = []
        self._local: EnvGroup | None = None
        if workers == 0:
            self._local = EnvGroup(factory, list(range(envs_per_worker)), seed)
            return
        policy.share_memory()
        ctx = mp.get_context("spawn")
        for w in range(workers):
            parent, child = ctx.Pipe()
            indices = list(range(w * envs_per_worker, (w + 1) * envs_per_worker))
            proc = ctx.Process(
                target=_worker_main, args=(child, factory, indices, seed, policy, os.getpid()), daemon=True
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)

    def collect(self, episodes: int, greedy: bool = False) -> list[Episode]:
        """``episodes`` whole episodes, ordered by env index then time (deterministic)."""
        if self._local is not None:
            result = self._local.collect(self.policy, episodes, greedy)
        else:
            n = len(self._conns)
            quotas = [episodes // n + (1 if w < episodes % n else 0) for w in range(n)]
            for conn, quota in zip(self._conns, quotas, strict=True):
                conn.send(("collect", quota, greedy))
            result = []
            for w, conn in enumerate(self._conns):
                try:
                    status, payload = conn.recv()
                except (EOFError, OSError) as exc:
                    raise RolloutError(f"rollout worker {w} exited (exit code {self._procs[w].exitcode})") from exc
                if status != "ok":
                    raise RolloutError(payload)
                result.extend(payload)
        return sorted(result, key=lambda e: e.env_index)  # stable: keeps each env's time order

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(("close",))
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
        if self._local is not None:
            self._local.close()
            self._local = None

    def __enter__(self) -> RolloutPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
