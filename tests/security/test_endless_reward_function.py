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

ENDLESS = "def reward_function(params):\n    while True:\n        pass\n"
JOB: dict[str, Any] = {
    "kind": "training",
    "name": "endless",
    "reward_function": ENDLESS,
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
