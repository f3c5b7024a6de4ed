"""``trackside bench train``: minutes until the default model completes 3 of 3 evaluation laps.

The default model (front camera, SHALLOW, the console's default 10-action space) trains on
reinvent_base with the guide's follow-the-centre-line reward, run in the reward sandbox. After each
iteration that looks promising (a training lap, or every few iterations) the greedy policy runs the
3-trial evaluation (start line, no resets); the clock includes evaluation time.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from race_server.models.hyperparameters import parse_hyperparameters
from race_server.sim.metadata import default_model_metadata
from trainer.config import StopConditions, TrainWorld
from trainer.evaluation import EvaluationSettings, evaluate
from trainer.train import IterationReport, RewardFn, Trainer, TrainJob, TrainOptions, in_process_reward

CENTRE_LINE_REWARD = '''def reward_function(params):
    """
    Example of rewarding the agent to follow center line
    """

    # Read input parameters
    track_width = params['track_width']
    distance_from_center = params['distance_from_center']

    # Calculate 3 markers that are increasingly further away from the center line
    marker_1 = 0.1 * track_width
    marker_2 = 0.25 * track_width
    marker_3 = 0.5 * track_width

    # Give higher reward if the car is closer to center line and vice versa
    if distance_from_center <= marker_1:
        reward = 1
    elif distance_from_center <= marker_2:
        reward = 0.5
    elif distance_from_center <= marker_3:
        reward = 0.1
    else:
        reward = 1e-3 # likely crashed/ close to off track

    return reward
'''
# Within the console's ranges; chosen for sample efficiency on 2 CPU cores (see the report).
BENCH_HYPERPARAMETERS: dict[str, Any] = {
    "batch_size": 64,
    "num_epochs": 3,
    "lr": 3e-4,
    "beta_entropy": 0.01,
    "discount_factor": 0.99,
    "loss_type": "huber",
    "num_episodes_between_training": 16,
}
EVAL_EVERY_ITERATIONS = 4


@contextlib.contextmanager
def _reward(source: str) -> Iterator[RewardFn]:
    try:
        from trainer.sandbox import RewardSandbox
    except ImportError:  # the sandbox is optional for the benchmark's figures
        yield in_process_reward(source)
        return
    with RewardSandbox(source) as sandbox:
        yield sandbox


def run_train_benchmark(
    max_minutes: float = 60,
    folder: Path | None = None,
    log: Callable[[str], None] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    metadata = default_model_metadata()
    hp = parse_hyperparameters(BENCH_HYPERPARAMETERS)
    world = TrainWorld(track_id="reinvent_base")
    job = TrainJob(metadata, hp, CENTRE_LINE_REWARD, world, StopConditions(max_minutes=max_minutes), model_name="bench")
    out = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="trackside-bench-"))
    start = time.perf_counter()
    state: dict[str, Any] = {
        "minutes": None,
        "best_lap": None,
        "evals": 0,
        "update_s": 0.0,
        "updates": 0,
        "reward_s": 0.0,
        "rollout_s": 0.0,
        "eval_s": 0.0,
        "last": None,
        "best_eval_progress": 0.0,
    }
    with _reward(CENTRE_LINE_REWARD) as reward_fn:
        trainer = Trainer(job, out, reward_fn, TrainOptions(workers=2, envs_per_worker=4, seed=seed))

        def on_iteration(report: IterationReport) -> bool:
            state["update_s"] += report.update_s
            state["updates"] += report.updates
            state["reward_s"] += report.reward_s
            state["rollout_s"] += report.rollout_s
            state["last"] = report
            promising = report.laps > 0 or report.iteration % EVAL_EVERY_ITERATIONS == 0
            line = (
                f"it {report.iteration} ep {report.episodes} steps {report.env_steps} "
                f"t {report.elapsed_s / 60:.1f}min progress {report.mean_progress:.1f} laps {report.laps} "
                f"reward {report.mean_reward:.1f} rollout {report.rollout_s:.1f}s update {report.update_s:.1f}s"
            )
            if promising:
                t0 = time.perf_counter()
                result = evaluate(trainer.agent.policy, metadata, world, EvaluationSettings(trials=3))
                state["eval_s"] += time.perf_counter() - t0
                state["evals"] += 1
                state["best_eval_progress"] = max(state["best_eval_progress"], result.mean_progress)
                line += f" | eval {result.completed}/3 progress {result.mean_progress:.1f}"
                if result.best_lap is not None:
                    best = state["best_lap"]
                    state["best_lap"] = result.best_lap if best is None else min(best, result.best_lap)
                if result.completed == 3:
                    state["minutes"] = (time.perf_counter() - start) / 60.0
            if log is not None:
                log(line)
            return state["minutes"] is None

        trainer.run(on_iteration)
    elapsed = time.perf_counter() - start
    last: IterationReport | None = state["last"]
    steps = last.env_steps if last is not None else 0
    return {
        "minutes_to_3_laps": None if state["minutes"] is None else round(state["minutes"], 2),
        "env_steps": steps,
        "env_steps_per_s": round(steps / elapsed, 1) if elapsed > 0 else 0.0,
        "updates_per_s": round(state["updates"] / state["update_s"], 2) if state["update_s"] > 0 else 0.0,
        "reward_overhead_us_per_step": round(state["reward_s"] / steps * 1e6, 1) if steps else 0.0,
        "best_lap_s": None if state["best_lap"] is None else round(state["best_lap"], 3),
        "episodes": last.episodes if last is not None else 0,
        "iterations": last.iteration if last is not None else 0,
        "evaluations": state["evals"],
        "best_eval_progress": round(state["best_eval_progress"], 1),
        "elapsed_minutes": round(elapsed / 60.0, 2),
        "rollout_s": round(state["rollout_s"], 1),
        "update_s": round(state["update_s"], 1),
        "eval_s": round(state["eval_s"], 1),
        "model_folder": str(out),
    }
