"""DeepRacer's step order on top of ``Simulation``: what a reward function and a simtrace row see.

DeepRacer (model metadata version >= 4) judges a step at the pose where the policy chose the
action, paired with that action's speed and steering, and only then drives the action:

* step 1 of every episode is ``prepare``: the car is held at its start pose, the action is ignored,
  the reward function is not called and the row's reward is 0;
* step k >= 2 reads the params at pose k (the pose the observation showed), with action k's speed
  and steering and ``steps == k`` (a float), calls the reward function, then drives action k;
* an ending (off track, crash, lap complete, ...) is seen on the step whose pose shows it, and that
  step's action is never driven;
* a penalty pause counts its steps at the step rate (a 3 s pause at 15 Hz adds 45 steps).

``Simulation.step`` drives an action and judges the pose it reaches; this class keeps that
judgement pending and hands it out on the next call, with the next action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from race_server.sim.episode import PAUSE, PREPARE, Simulation, StepOutcome


@dataclass(frozen=True)
class JudgedStep:
    """One DeepRacer step: the params a reward function sees and the row a simtrace logs."""

    params: dict[str, Any]
    status: str
    terminated: bool
    truncated: bool
    pause_duration: float
    lap_time: float | None
    metrics: dict[str, Any]

    @property
    def rewarded(self) -> bool:
        """False for the prepare step, whose reward is 0 without calling the reward function."""
        return self.status != PREPARE


class DeepRacerStepper:
    """Runs a ``Simulation`` in DeepRacer's step order (see the module docstring)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.steps = 0.0
        self._pending: StepOutcome | None = None
        self._ended = False

    def reset(self) -> StepOutcome:
        """Start an episode; the car stands at its start pose, step 1 (prepare) comes next."""
        self._pending = self.sim.reset()
        self._ended = False
        self.steps = 0.0
        return self._pending

    @property
    def observed_params(self) -> dict[str, Any]:
        """Params at the pose the next step will be judged at (what a driver sees to choose)."""
        if self._pending is None:
            raise RuntimeError("call reset() before observed_params")
        return self._pending.params

    def step(self, steering_deg: float, speed: float) -> JudgedStep:
        pending = self._pending
        if pending is None:
            raise RuntimeError("call reset() before step()")
        self.steps += 1.0
        if self._ended:
            # gymnasium leaves stepping past the end to the env: drive on, judging where it lands
            outcome = self.sim.step(steering_deg, speed)
            return self._judged(self._with_action(outcome, steering_deg, speed), outcome, outcome.status)
        params = self._with_action(pending, steering_deg, speed)
        if self.steps == 1.0:
            prepare = self._judged(params, pending, PREPARE)
            # held still: DeepRacer sends zero speed and steering in the prepare phase
            self._pending = self.sim.step(0.0, 0.0)
            return prepare
        judged = self._judged(params, pending, pending.status)
        self._ended = pending.terminated or pending.truncated
        if not self._ended:
            self._pending = self.sim.step(steering_deg, speed)
        if pending.status == PAUSE:
            self.steps += round(pending.pause_duration * self.sim.config.control_hz)
        return judged

    def _with_action(self, outcome: StepOutcome, steering_deg: float, speed: float) -> dict[str, Any]:
        params = dict(outcome.params)
        params["steps"] = self.steps
        params["speed"] = float(speed)
        params["steering_angle"] = float(steering_deg)
        return params

    def _judged(self, params: dict[str, Any], outcome: StepOutcome, status: str) -> JudgedStep:
        metrics = self.sim.metrics.as_dict()
        metrics["steps"] = self.steps
        if status == PREPARE:
            metrics["episode_status"] = "In progress"
        terminal = status != PREPARE and (outcome.terminated or outcome.truncated)
        return JudgedStep(
            params=params,
            status=status,
            terminated=terminal and outcome.terminated,
            truncated=terminal and outcome.truncated,
            pause_duration=outcome.pause_duration if status != PREPARE else 0.0,
            lap_time=outcome.lap_time if status != PREPARE else None,
            metrics=metrics,
        )
