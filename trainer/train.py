"""The training loop: job (metadata, hyperparameters, world, reward, stop conditions) -> model folder.

Each iteration collects ``num_episodes_between_training`` whole episodes in the rollout workers,
computes the rewards here (one batched call into the reward sandbox), updates PPO or SAC, then
writes a checkpoint, the training metrics and the iteration's simtrace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from race_server.models.hyperparameters import Hyperparameters
from race_server.sim.env import DeepRacerEnv, checked_reward
from race_server.sim.episode import PREPARE, EpisodeConfig
from race_server.sim.metadata import ModelMetadata, parse_model_metadata
from race_server.sim.params import fresh_params
from race_server.sim.simtrace import SimtraceRow, SimtraceWriter
from trainer.checkpoint import ModelFolderError, load_checkpoint, read_model_folder, save_checkpoint, write_static_files
from trainer.config import StopConditions, TrainWorld, check_clone
from trainer.metrics import write_training_metrics
from trainer.networks import ObsSpec, PPOActorCritic, SACActor
from trainer.ppo import PPO
from trainer.rollout import EnvFactory, Episode, RolloutPool
from trainer.sac import SAC
from trainer.training_log import TrainingClock, episode_duration, episode_progress, metrics_entry, simtrace_rows

RewardFn = Callable[[dict[str, Any]], float]
START_POSITIONS = 20  # 100 % / the 5 % round-robin advance


def _no_reward(params: dict[str, Any]) -> float:
    return 0.0


class DeepRacerFactory:
    """Picklable env factory; env ``i`` starts its round robin at a different position so parallel
    envs cover the lap instead of all starting at the line."""

    def __init__(self, metadata_raw: dict[str, Any], world: TrainWorld, seed: int, total_envs: int) -> None:
        self.metadata_raw = metadata_raw
        self.world = world
        self.seed = seed
        self.total_envs = max(total_envs, 1)

    def __call__(self, index: int) -> gym.Env[Any, Any]:
        episode = EpisodeConfig(mode="training", alternate_direction=self.world.alternate_direction)
        env = DeepRacerEnv(self.metadata_raw, self.world.world_config(episode, seed=self.seed + index), _no_reward)
        offset = (index * START_POSITIONS) // self.total_envs
        # the env increments episode_index at each reset; a seeded reset restarts it at -1
        return _StartOffset(env, offset)


class _StartOffset(gym.Wrapper[Any, Any, Any, Any]):
    def __init__(self, env: DeepRacerEnv, offset: int) -> None:
        super().__init__(env)
        self.offset = offset

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            return self.env.reset(options=options)
        env = self.env.unwrapped
        assert isinstance(env, DeepRacerEnv)
        env.reset(seed=seed, options=options)
        env.sim.episode_index = self.offset - 1
        return env.reset(options=options)


@dataclass
class TrainOptions:
    workers: int = 2
    envs_per_worker: int = 4
    seed: int = 0
    torch_threads: int = 1  # measured: 2 intra-op threads ran 3-5x slower on the shared 2-core box
    resume: bool = False
    write_simtrace: bool = True
    export_onnx: bool = True
    # greedy episodes after each iteration, logged as the metrics' phase "evaluation" (as DeepRacer does)
    evaluation_episodes: int = 1
    network_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. vector_dense for small test envs
    sac_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainJob:
    model_metadata: dict[str, Any]
    hyperparameters: Hyperparameters
    reward_source: str = ""
    world: TrainWorld = field(default_factory=TrainWorld)
    stop: StopConditions = field(default_factory=StopConditions)
    clone_from: Path | None = None
    model_name: str = "model"


@dataclass(frozen=True)
class IterationReport:
    iteration: int
    episodes: int  # total so far
    env_steps: int  # total so far
    elapsed_s: float
    mean_reward: float
    mean_progress: float
    laps: int  # laps completed in this iteration's episodes
    checkpoint: str
    is_best: bool
    update_s: float
    rollout_s: float
    reward_s: float
    updates: int
    max_minutes: float | None
    max_episodes: int | None


def _obs_spec(space: gym.Space[Any]) -> ObsSpec:
    if isinstance(space, gym.spaces.Dict):
        return ObsSpec.of({k: tuple(v.shape or ()) for k, v in space.spaces.items()})
    return ObsSpec.of({"VECTOR": tuple(space.shape or ())})


def _n_actions(space: gym.Space[Any]) -> int | None:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box) and space.shape == (2,):
        return None
    raise ValueError(f"unsupported action space {space}")


def build_agent(
    algorithm: str,
    spec: ObsSpec,
    network: str,
    n_actions: int | None,
    hp: Hyperparameters,
    seed: int,
    options: TrainOptions,
) -> PPO | SAC:
    if algorithm == "sac":
        if n_actions is not None:
            raise ValueError("SAC only works with continuous action space")
        return SAC(spec, network, hp, seed=seed, **options.sac_kwargs, **options.network_kwargs)
    return PPO(spec, network, n_actions, hp, seed=seed, **options.network_kwargs)


def policy_from_state(state: dict[str, Any]) -> PPOActorCritic | SACActor:
    """The acting network of a checkpoint (PPO actor-critic or SAC actor), in eval mode."""
    spec = ObsSpec.of({k: tuple(v) for k, v in state["obs_spec"].items()})
    kwargs = dict(state.get("network_kwargs", {}))
    policy: PPOActorCritic | SACActor
    if state["algorithm"] == "sac":
        policy = SACActor(spec, state["network"], **kwargs)
    else:
        n = state["n_actions"]
        policy = PPOActorCritic(spec, state["network"], None if n is None else int(n), **kwargs)
    policy.load_state_dict(state["agent"]["model"])
    policy.eval()
    return policy


def compute_rewards(reward_fn: RewardFn | None, episodes: Sequence[Episode]) -> list[NDArray[np.float64]]:
    """Rewards from the DeepRacer params (one batched sandbox call when available), else the env's.

    The prepare step of each episode gets 0 without a call, as in DeepRacer; every call gets its own
    copy of the params (the sandbox's are decoded afresh per call)."""
    if reward_fn is None or not any(e.params for e in episodes):
        return [e.rewards for e in episodes]
    rewarded = [
        [t for t, status in enumerate(e.statuses or [""] * len(e.params)) if status != PREPARE] for e in episodes
    ]
    flat = [e.params[t] for e, steps in zip(episodes, rewarded, strict=True) for t in steps]
    call_many = getattr(reward_fn, "call_many", None)
    raw = call_many(flat) if call_many is not None else [reward_fn(fresh_params(p)) for p in flat]
    values = iter([checked_reward(v) for v in raw])
    out = []
    for e, steps in zip(episodes, rewarded, strict=True):
        rewards = np.zeros(e.length, np.float64)
        for t in steps:
            rewards[t] = next(values)
        out.append(rewards)
    return out


class Trainer:
    def __init__(
        self,
        job: TrainJob,
        folder: Path,
        reward_fn: RewardFn | None = None,
        options: TrainOptions | None = None,
        env_factory: EnvFactory | None = None,
    ) -> None:
        self.job = job
        self.folder = Path(folder)
        self.reward_fn = reward_fn
        self.options = options or TrainOptions()
        self.metadata: ModelMetadata = parse_model_metadata(job.model_metadata)
        algorithm = self.metadata.training_algorithm
        if algorithm == "sac" and job.hyperparameters.num_episodes_between_training != 1:
            raise ValueError("hyperparameters.json: num_episodes_between_training must be 1 for SAC")
        if env_factory is None:
            job.world.validate()
            total = max(self.options.workers, 1) * self.options.envs_per_worker
            env_factory = DeepRacerFactory(job.model_metadata, job.world, self.options.seed, total)
        self.factory = env_factory
        probe = env_factory(0)
        self.spec = _obs_spec(probe.observation_space)
        self.n_actions = _n_actions(probe.action_space)
        probe.close()
        torch.set_num_threads(self.options.torch_threads)
        self.agent = build_agent(
            algorithm,
            self.spec,
            self.metadata.neural_network,
            self.n_actions,
            job.hyperparameters,
            self.options.seed,
            self.options,
        )
        self.iteration = 0
        self.episodes = 0
        self.env_steps = 0
        self.metrics: list[dict[str, Any]] = []
        self.clock = TrainingClock()
        if self.options.resume and (self.folder / "model").exists():
            self._resume()
        elif job.clone_from is not None:
            self._clone(Path(job.clone_from))

    # ------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "algorithm": self.metadata.training_algorithm,
            "network": self.metadata.neural_network,
            "n_actions": self.n_actions,
            "obs_spec": {k: list(v) for k, v in self.spec.shapes},
            "network_kwargs": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.options.network_kwargs.items()
            },
            "iteration": self.iteration,
            "episodes": self.episodes,
            "env_steps": self.env_steps,
            "agent": self.agent.state_dict(),
        }

    def _resume(self) -> None:
        folder = read_model_folder(self.folder)
        state = load_checkpoint(folder.checkpoint_path("last"))
        self.agent.load_state_dict(state["agent"])
        self.iteration = int(state["iteration"])
        self.episodes = int(state["episodes"])
        self.env_steps = int(state["env_steps"])
        path = self._metrics_path()
        if path.exists():
            self.metrics = json.loads(path.read_text())["metrics"]

    def _clone(self, source: Path) -> None:
        parent = read_model_folder(source)
        check_clone(parent.metadata, self.metadata)
        state = load_checkpoint(parent.checkpoint_path("best"))
        try:
            self.agent.load_state_dict({**self.agent.state_dict(), "model": state["agent"]["model"]})
            if isinstance(self.agent, PPO):
                # fresh optimiser: the clone's learning rate and schedule start over
                self.agent.optimizer = torch.optim.Adam(
                    self.agent.model.parameters(), lr=self.job.hyperparameters.lr, eps=1e-5, fused=True
                )
        except (RuntimeError, KeyError) as exc:
            raise ModelFolderError(f"clone-from checkpoint does not fit this model: {exc}") from exc

    def _metrics_path(self) -> Path:
        return self.folder / "metrics" / "training" / "training-metrics.json"

    def _evaluate(self, pool: RolloutPool, trial: int, max_steps: int) -> None:
        """DeepRacer's evaluation episodes between iterations: greedy, logged with phase "evaluation".

        A greedy policy can circle forever inside the track: an episode is cut at ``max_steps``
        (twice the iteration's longest training episode) so that training time stays bounded."""
        count = self.options.evaluation_episodes
        if count <= 0:
            return
        episodes = pool.collect(count, greedy=True, max_steps=max_steps)
        for e, r in zip(episodes, compute_rewards(self.reward_fn, episodes), strict=True):
            start_s = self.clock.start()
            self.metrics.append(
                metrics_entry(e, r, start_s=start_s, episode=self.episodes, trial=trial, phase="evaluation")
            )
            self.clock.finish(episode_duration(e))

    # -------------------------------------------------------------------- loop
    def run(self, on_iteration: Callable[[IterationReport], bool] | None = None) -> IterationReport | None:
        """Train until a stop condition (or ``on_iteration`` returns False); returns the last report."""
        job, opts = self.job, self.options
        write_static_files(
            self.folder,
            job.model_metadata,
            job.reward_source,
            job.hyperparameters,
            job.world.training_params(job.model_name),
        )
        start = time.perf_counter()
        report: IterationReport | None = None
        try:
            with RolloutPool(
                self.factory,
                self.agent.policy,
                workers=opts.workers,
                envs_per_worker=opts.envs_per_worker,
                seed=opts.seed,
            ) as pool:
                while not self._should_stop(start):
                    report = self.iteration_step(pool, start)
                    if on_iteration is not None and not on_iteration(report):
                        break
        finally:
            # also after Ctrl-C or a reward error: model.onnx then matches the last checkpoint
            if opts.export_onnx and self.iteration > 0:
                self.export_onnx()
        return report

    def export_onnx(self) -> Path:
        """Write model.onnx from the last checkpoint (not the live weights, which a failed update may have moved)."""
        from trainer.onnx_export import export_onnx

        policy = policy_from_state(load_checkpoint(read_model_folder(self.folder).checkpoint_path("last")))
        return export_onnx(policy, self.spec, self.folder / "model.onnx")

    def _should_stop(self, start: float) -> bool:
        stop = self.job.stop
        if stop.max_episodes is not None and self.episodes >= stop.max_episodes:
            return True
        return stop.max_minutes is not None and (time.perf_counter() - start) / 60.0 >= stop.max_minutes

    def iteration_step(self, pool: RolloutPool, start: float) -> IterationReport:
        hp = self.job.hyperparameters
        n = hp.num_episodes_between_training
        if self.job.stop.max_episodes is not None:
            n = max(1, min(n, self.job.stop.max_episodes - self.episodes))
        t0 = time.perf_counter()
        episodes = pool.collect(n)
        t1 = time.perf_counter()
        rewards = compute_rewards(self.reward_fn, episodes)
        t2 = time.perf_counter()
        stats = self.agent.update(episodes, rewards)
        t3 = time.perf_counter()
        self.iteration += 1
        discrete = self.n_actions is not None
        progresses = [episode_progress(e) for e in episodes]
        laps = 0
        writer_rows: list[SimtraceRow] = []
        for e, r, p in zip(episodes, rewards, progresses, strict=True):
            self.episodes += 1
            self.env_steps += e.length
            laps += int(p >= 100.0)
            start_s = self.clock.start()
            trial = (self.episodes - 1) % n + 1
            self.metrics.append(
                metrics_entry(e, r, start_s=start_s, episode=self.episodes, trial=trial, phase="training")
            )
            if self.options.write_simtrace and e.params:
                writer_rows.extend(simtrace_rows(e, r, self.episodes - 1, discrete, start_s))
            self.clock.finish(episode_duration(e))
        self._evaluate(pool, trial=n, max_steps=2 * max(e.length for e in episodes) + 30)
        if writer_rows:
            trace = self.folder / "training-simtrace" / f"{self.iteration - 1}-iteration.csv"
            trace.parent.mkdir(parents=True, exist_ok=True)
            with trace.open("w", newline="") as f:
                SimtraceWriter(f).write_rows(writer_rows)
        write_training_metrics(self._metrics_path(), self.metrics)
        mean_progress = float(np.mean(progresses))
        lap_times = [t for e in episodes for t in e.metrics.get("lap_times", [])]
        name, is_best = save_checkpoint(
            self.folder,
            self.iteration,
            self.env_steps,
            self.state(),
            progress=mean_progress,
            lap_time=min(lap_times) if lap_times else None,
        )
        updates = int(getattr(stats, "minibatches", getattr(stats, "updates", 0)))
        return IterationReport(
            iteration=self.iteration,
            episodes=self.episodes,
            env_steps=self.env_steps,
            elapsed_s=time.perf_counter() - start,
            mean_reward=float(np.mean([r.sum() for r in rewards])),
            mean_progress=mean_progress,
            laps=laps,
            checkpoint=name,
            is_best=is_best,
            update_s=t3 - t2,
            rollout_s=t1 - t0,
            reward_s=t2 - t1,
            updates=updates,
            max_minutes=self.job.stop.max_minutes,
            max_episodes=self.job.stop.max_episodes,
        )


def in_process_reward(source: str, filename: str = "reward_function.py") -> RewardFn:
    """The reward file's ``reward_function`` run in this process (tests, and when no sandbox exists)."""
    namespace: dict[str, Any] = {"__name__": "reward_function"}
    exec(compile(source, filename, "exec"), namespace)
    fn = namespace.get("reward_function")
    if not callable(fn):
        raise ValueError(f"{filename}: defines no reward_function(params)")
    return fn  # type: ignore[no-any-return]
