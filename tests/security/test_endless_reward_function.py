"""Threat: a racer submits a reward function that never returns. The sandbox allowed 1 s per step
of a batch and a batch is a whole iteration, so the job outran its time limit by minutes and
ignored Stop. Stop and the job's time limit must end it within seconds, whatever the reward does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from race_server.db.jobs import TERMINAL
from race_server.settings import Settings
from tests.conftest import LiveServer
from tests.helpers import login, make_user

# Swallows the per-call timeout (raised into it) and loops on: only Stop or the time limit end it.
STUBBORN = (
    "def reward_function(params):\n"
    "    while True:\n"
    "        try:\n"
    "            while True:\n"
    "                pass\n"
    "        except BaseException:\n"
    "            pass\n"
)
JOB: dict[str, Any] = {
    "kind": "training",
    "name": "endless",
    "reward_function": STUBBORN,
    # 20 short episodes a batch: hundreds of steps, so a per-step allowance alone would be minutes.
    "hyperparameters": {"num_episodes_between_training": 20, "batch_size": 32, "num_epochs": 3},
    "options": {"workers": 0, "envs_per_worker": 1},
}
GRACE_S = 20.0  # the job process's start and shutdown on a loaded 2-core machine


async def _status_within(client: httpx.AsyncClient, job_id: int, wanted: tuple[str, ...], within_s: float) -> str:
    deadline = time.monotonic() + within_s
    while True:
        status = str((await client.get(f"/api/jobs/{job_id}")).json()["status"])
        if status in wanted or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)  # polling the public API, as a racer's page does


@pytest.mark.slow
async def test_stop_ends_a_job_stuck_in_its_reward_function(live_server: LiveServer, settings: Settings) -> None:
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    async with login(live_server, "r@example.com") as racer:
        created = await racer.post("/api/jobs", json={**JOB, "stop": {"max_minutes": 30}})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert await _status_within(racer, job_id, ("in_progress", *TERMINAL), 120) == "in_progress"
        assert (await racer.post(f"/api/jobs/{job_id}/stop")).status_code == 200
        stopped_at = time.monotonic()
        status = await _status_within(racer, job_id, TERMINAL, GRACE_S)
        assert status in ("canceled", "completed"), f"still {status} {time.monotonic() - stopped_at:.0f} s after Stop"


@pytest.mark.slow
async def test_the_time_limit_ends_a_job_stuck_in_its_reward_function(
    live_server: LiveServer, settings: Settings
) -> None:
    limit_s = 15.0
    await make_user(settings, "racer", "r@example.com", alias="racer-one")
    async with login(live_server, "r@example.com") as racer:
        created = await racer.post("/api/jobs", json={**JOB, "stop": {"max_minutes": limit_s / 60}})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert await _status_within(racer, job_id, ("in_progress", *TERMINAL), 120) == "in_progress"
        status = await _status_within(racer, job_id, TERMINAL, limit_s + GRACE_S)
        assert status in TERMINAL, f"still {status} well past its {limit_s:g} s limit"
        job = (await racer.get(f"/api/jobs/{job_id}")).json()
        assert status != "failed", job  # running out of time is how a job ends, not a failure


def test_one_endless_call_in_a_batch_is_stopped_by_the_per_call_budget() -> None:
    """The per-call budget holds inside a batch too: the third step never returns and the batch
    fails in about call_timeout_s, not call_timeout_s × steps."""
    from trainer.sandbox import RewardError, RewardSandbox

    source = "def reward_function(params):\n    while params['d'] == 3:\n        pass\n    return 1.0\n"
    steps = 60
    with RewardSandbox(source, call_timeout_s=0.5) as sandbox:
        started = time.monotonic()
        with pytest.raises(RewardError) as info:
            sandbox.call_many([{"d": n} for n in range(steps)])
        elapsed = time.monotonic() - started
    assert (info.value.code, info.value.index) == ("TIMEOUT", 3)
    assert elapsed < 10, f"{elapsed:.1f} s: the batch ran on the per-step allowance ({steps} × 0.5 s)"


def test_stop_and_the_deadline_end_a_waiting_reward_call() -> None:
    """A reward function that swallows the per-call timeout is still ended by Stop and the deadline."""
    import threading

    from trainer.sandbox import RewardError, RewardSandbox

    stop = threading.Event()
    with RewardSandbox(STUBBORN, call_timeout_s=0.2, cancel=stop) as sandbox:
        timer = threading.Timer(1.0, stop.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(RewardError) as info:
            sandbox.call_many([{"d": n} for n in range(600)])  # a 120 s allowance
        timer.join()
    assert info.value.code == "STOPPED"
    assert time.monotonic() - started < 10
    with RewardSandbox(STUBBORN, call_timeout_s=0.2) as sandbox:
        sandbox.deadline = time.monotonic() + 1.0  # set once started: start-up is not the reward's time
        with pytest.raises(RewardError) as info:
            sandbox.call_many([{"d": n} for n in range(600)])
    assert info.value.code == "JOB_TIME_LIMIT"
