"""A LIVE run's reward column: the racer's reward function scored on every step, after the run.

DeepRacer's evaluation calls the model's reward function on every step and logs the value in the
simtrace. A LIVE run drives the model's ONNX policy on the 15 Hz race clock, and a reward call
(a round trip to the jailed sandbox process, or a slow user function) must never delay a tick. So
the simulator only attaches each step's reward params to its telemetry (``host.params``), and when
the run ends its steps go to the reward sandbox in batches, in the recorder's writer thread, and
each telemetry row gets its ``reward`` before the logs are written.

What the function sees matches the simtrace row it scores: the pose the step reached (``x``, ``y``,
``progress``, closest waypoints, objects, ...), the model's action (``speed``, ``steering_angle``,
before the speed multiplier), ``steps`` counted from 1.0 within the lap and ``progress`` 100 on the
step that completes a lap. Ticks on which the car is held (a penalty pause, waiting to go back on
the start line) have no step, so no call: reward 0.

Reward 0 everywhere, and the note in metrics.json says why, for a reference driver (house and demo
racers drive no model), a model without reward_function.py, or a reward function that fails (from
the failing step on) or runs out of the run's budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from race_server.live.spec import DriverSpec
from race_server.queue.run_logs import Route, lap_of_rows, write_run_logs
from race_server.sim.params import waypoint_list
from race_server.sim.tracks import load_track

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 1.0  # one step's call, as in training
RUN_BUDGET_S = 120.0  # the whole run's scoring (a 3-minute slot is ~2,700 steps)
CPU_SECONDS = 120
BATCH = 500  # steps per round trip: big enough to amortise it, small enough to keep frames short

REFERENCE_DRIVER = "reference driver: no model, so no reward function; reward is 0"
NO_REWARD_FILE = "the model has no reward_function.py; reward is 0"


@dataclass(frozen=True)
class RewardScore:
    """How the run's reward column was filled: ``scored`` steps judged, and a note for metrics.json."""

    scored: int
    note: str


def score_rows(telemetry: Sequence[dict[str, Any]], source: str, route: Route) -> RewardScore:
    """Set ``reward`` on every telemetry row: the reward function's value for a driven step, else 0."""
    from trainer.sandbox import RewardError, RewardSandbox

    waypoints = waypoint_list(load_track(*route))
    for event in telemetry:
        event["reward"] = 0.0
    todo: list[tuple[dict[str, Any], dict[str, Any]]] = []
    steps: dict[int, int] = {}
    for event, (lap, completes) in zip(telemetry, lap_of_rows(telemetry), strict=True):
        steps[lap] = steps.get(lap, 0) + 1
        host = event.get("host")
        params = host.get("params") if isinstance(host, dict) else None
        if not isinstance(params, dict):
            continue
        params = {**params, "waypoints": waypoints, "steps": float(steps[lap])}
        if completes:
            params["progress"] = 100.0
        todo.append((event, params))
    if not todo:
        return RewardScore(0, "no driven steps; reward is 0")
    scored = 0
    sandbox = RewardSandbox(
        source, call_timeout_s=CALL_TIMEOUT_S, cpu_seconds=CPU_SECONDS, deadline=time.monotonic() + RUN_BUDGET_S
    )
    try:
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            values = sandbox.call_many([params for _, params in chunk])
            for (event, _), value in zip(chunk, values, strict=True):
                event["reward"] = value
            scored += len(chunk)
    except RewardError as error:
        # a batch is all or nothing: the failing batch's earlier values never came back
        return RewardScore(scored, f"reward function failed ({error}); driven steps from {scored + 1} on have reward 0")
    finally:
        sandbox.close()
        for event, _ in todo:
            event["host"].pop("params", None)  # scored: later readers (the evaluation video) need no copy
    return RewardScore(scored, "scored by the model's reward_function.py")


def write_scored_run_logs(
    folder: Path, telemetry: Sequence[dict[str, Any]], route: Route | None, driver: DriverSpec | None
) -> None:
    """Score the run's steps with ``driver``'s reward function (if it has one), then write its logs;
    metrics.json's ``reward`` says how the reward column was filled."""
    note = None
    if driver is not None:
        note = REFERENCE_DRIVER if driver.kind == "reference" else NO_REWARD_FILE
        if driver.reward_function is not None and route is not None:
            try:
                note = score_rows(telemetry, driver.reward_function, route).note
            except Exception as error:  # the logs are still written
                log.exception("scoring a LIVE run's rewards failed")
                note = f"scoring failed ({type(error).__name__}: {error}); rewards may be missing (0)"
    write_run_logs(folder, telemetry, route, note)
