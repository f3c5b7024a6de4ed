"""What scoring a LIVE run's reward costs the race clock (``trackside bench live-reward``).

A LIVE run of a model with a reward function attaches each step's reward params to its telemetry,
and when the run ends the server scores them in the reward sandbox (race_server.queue.run_rewards)
while the next racer is already on track. Measured on a real-time RaceHost driving an ONNX model:

* ``plain``: the model without a reward function (the baseline);
* ``params``: the model with a reward function (each tick copies its params into the telemetry);
* ``params_while_scoring``: the same while another thread scores a finished 3-minute run
  (2,700 steps) over and over, as the server does after each run.

Each phase reports the tick jitter and tick work percentiles the simulator process measures, and
``scoring`` the sandbox's cost: its start-up, a whole finished run's scoring, and the sandbox's
own cost per step (a trivial function, in the same batches).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from race_server.bench.live import measure_host
from race_server.live.host import DriverSpec, RaceHost
from race_server.live.session import LiveSession
from race_server.live.spec import RunSpec

ROUTE = ("reinvent_base", False)
RUN_STEPS = 2700  # a 3-minute slot at 15 Hz
# A typical console reward function: follow the centre line, slow down in corners.
REWARD = """
import math

def reward_function(params):
    width = params['track_width']
    distance = params['distance_from_center']
    if not params['all_wheels_on_track']:
        return 1e-3
    reward = 1.0 if distance <= 0.1 * width else 0.5 if distance <= 0.25 * width else 0.1
    prev_wp, next_wp = params['closest_waypoints']
    wps = params['waypoints']
    direction = math.degrees(math.atan2(wps[next_wp][1] - wps[prev_wp][1], wps[next_wp][0] - wps[prev_wp][0]))
    if abs(direction - params['heading']) % 360 > 10 and params['speed'] > 2.5:
        reward *= 0.8
    return float(reward)
"""


def _model(folder: Path) -> DriverSpec:
    import torch

    from race_server.sim.metadata import default_model_metadata
    from trainer.networks import ObsSpec, PPOActorCritic
    from trainer.onnx_export import export_onnx

    metadata: dict[str, Any] = default_model_metadata()
    torch.manual_seed(0)
    spec = ObsSpec.of({"FRONT_FACING_CAMERA": (120, 160, 1)})
    policy = PPOActorCritic(spec, metadata["neural_network"], len(metadata["action_space"])).eval()
    path = export_onnx(policy, spec, folder / "model.onnx")
    (folder / "model_metadata.json").write_text(json.dumps(metadata))
    return DriverSpec("onnx", onnx_path=path, model_metadata=metadata)


def _finished_run(driver: DriverSpec) -> list[dict[str, Any]]:
    """A 3-minute run's telemetry with reward params (steps of a short run repeated)."""
    session = LiveSession(1, *ROUTE)
    session.launch(RunSpec(1, 1, 1, *ROUTE, objects={}, driver=driver, slot_s=20.0, countdown_s=0.0))
    steps: list[dict[str, Any]] = []
    while session.running:
        steps += [e for e in session.tick() if e["type"] == "telemetry" and e.get("host")]
    return [dict(steps[i % len(steps)]) for i in range(RUN_STEPS)]


def _copy(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows to score once more: scoring drops each row's params when done."""
    return [{**row, "host": dict(row["host"])} for row in rows]


def _score_repeatedly(rows: list[dict[str, Any]], stop: threading.Event, figures: dict[str, Any]) -> None:
    from race_server.queue.run_rewards import score_rows

    runs, elapsed = 0, 0.0
    while not stop.is_set():
        fresh = _copy(rows)
        started = time.perf_counter()
        score_rows(fresh, REWARD, ROUTE)
        elapsed += time.perf_counter() - started
        runs += 1
    figures["runs_scored"] = runs
    figures["run_scoring_s"] = round(elapsed / runs, 3) if runs else None


def _scoring_cost(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from race_server.queue.run_rewards import BATCH, score_rows
    from trainer.sandbox import RewardSandbox, measure_overhead

    started = time.perf_counter()
    with RewardSandbox(REWARD):
        pass
    startup = time.perf_counter() - started
    started = time.perf_counter()
    score = score_rows(_copy(rows), REWARD, ROUTE)
    total = time.perf_counter() - started
    return {
        "steps": score.scored,
        "sandbox_startup_s": round(startup, 3),
        "run_scoring_s": round(total, 3),  # start-up included
        "sandbox_per_step_us": round(measure_overhead(n=len(rows), batch=BATCH), 1),  # a trivial function
    }


async def _phases(seconds: float, plain: DriverSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    scored = replace(plain, reward_function=REWARD)
    host = RaceHost(1, realtime=True)
    await host.start(*ROUTE)
    figures: dict[str, Any] = {}
    try:
        figures["plain"] = await measure_host(host, seconds, driver=plain)
        figures["params"] = await measure_host(host, seconds, driver=scored)
        stop = threading.Event()
        background: dict[str, Any] = {}
        scorer = threading.Thread(target=_score_repeatedly, args=(rows, stop, background), daemon=True)
        scorer.start()
        try:
            figures["params_while_scoring"] = await measure_host(host, seconds, driver=scored)
        finally:
            stop.set()
            await asyncio.to_thread(scorer.join)
        figures["params_while_scoring"].update(background)
    finally:
        await host.close()
    return figures


def run_live_reward_benchmark(seconds: float = 20.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        plain = _model(Path(tmp))
        rows = _finished_run(replace(plain, reward_function=REWARD))
        scoring = _scoring_cost(rows)
        phases = asyncio.run(_phases(seconds, plain, rows))
    keep = (
        "host_priority",
        "ticks",
        "tick_jitter_p50_ms",
        "tick_jitter_p99_ms",
        "tick_jitter_max_ms",
        "tick_work_p99_ms",
    )
    out: dict[str, Any] = {"seconds": seconds, "scoring": scoring}
    for name, figures in phases.items():
        out[name] = {k: v for k, v in figures.items() if k in keep or k.startswith("run")}
    return out
