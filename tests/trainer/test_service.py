"""The job worker on real PostgreSQL with real job processes: claim, run, progress, stop, crash, restart."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from race_server.bus import EventBus, InProcessBus
from race_server.db import jobs, users
from race_server.db import models as model_repo
from race_server.db.jobs import WorkerIdentity
from race_server.db.migrate import migrate
from trainer.service import JobSupervisor

REWARD = "def reward_function(params):\n    return 1.0 + float(params['progress']) / 100.0\n"
# The smallest training the trainer allows: one process, one env, 2 episodes in one iteration.
TINY: dict[str, Any] = {
    "kind": "training",
    "name": "tiny",
    "reward_function": REWARD,
    "hyperparameters": {"num_episodes_between_training": 5, "batch_size": 32, "num_epochs": 3},
    "stop": {"max_episodes": 2},
    "options": {"workers": 0, "envs_per_worker": 1},
}
# Runs many iterations of 5 episodes: long enough to be stopped or killed while it trains.
LONG: dict[str, Any] = {**TINY, "name": "long", "stop": {"max_episodes": 10_000, "max_minutes": 10}}
DEADLINE_S = 120


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=6)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate(conn)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def owner(pool: asyncpg.Pool) -> int:
    user = await users.create(pool, role="racer", email="racer@example.com", password_hash="x", alias="racer")
    return user.id


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    bus = InProcessBus()
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture
async def supervisor(pool: asyncpg.Pool, bus: EventBus, tmp_path: Path) -> AsyncIterator[JobSupervisor]:
    sup = JobSupervisor(pool, bus, tmp_path / "data", poll_interval_s=0.2, shutdown_grace_s=30)
    await sup.start()
    try:
        yield sup
    finally:
        await sup.close()


async def enqueue(pool: asyncpg.Pool, owner: int, config: dict[str, Any]) -> int:
    async with pool.acquire() as conn:
        job, _ = await jobs.enqueue(conn, owner_id=owner, kind=config["kind"], name=config["name"], config=config)
    return job.id


async def events_until(
    bus: EventBus, channel: str, done: Callable[[dict[str, Any]], bool], start: Callable[[], Awaitable[None]]
) -> list[dict[str, Any]]:
    """Subscribe, run ``start``, and collect the channel's events up to the one ``done`` accepts."""
    seen: list[dict[str, Any]] = []
    async with bus.subscribe(channel) as sub, asyncio.timeout(DEADLINE_S):
        await start()
        async for event in sub:
            assert isinstance(event, dict), event
            seen.append(event)
            if done(event):
                return seen
    raise AssertionError(f"channel {channel} ended after {seen}")


def terminal(event: dict[str, Any]) -> bool:
    return event["type"] == "job.status" and event["status"] in jobs.TERMINAL


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["status"] for e in events if e["type"] == "job.status"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def pid_exit(pid: int) -> None:
    """Await a (non-child) process's exit: a pidfd becomes readable when it ends."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(fd, readable)
    try:
        if not select.select([fd], [], [], 0)[0]:
            await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)


# ------------------------------------------------------------------------------------------ queue
async def test_a_job_is_claimed_by_exactly_one_of_two_concurrent_claimers(pool: asyncpg.Pool, owner: int) -> None:
    job_id = await enqueue(pool, owner, TINY)
    a = WorkerIdentity("host:1:a", "host", 1)
    b = WorkerIdentity("host:2:b", "host", 2)
    async with pool.acquire() as ca, pool.acquire() as cb:
        results = await asyncio.gather(jobs.claim(ca, a, "/jobs"), jobs.claim(cb, b, "/jobs"))
    claimed = [r for r in results if r is not None]
    assert len(claimed) == 1
    job, event = claimed[0]
    assert job.id == job_id and job.status == "initializing" and job.attempts == 1
    assert job.model_dir == f"/jobs/{job_id}"
    assert event.data["status"] == "initializing"
    stored = await jobs.get(pool, job_id)
    assert stored is not None and stored.worker_id == job.worker_id


async def test_a_claimer_skips_a_row_another_claimer_holds_instead_of_waiting(pool: asyncpg.Pool, owner: int) -> None:
    first = await enqueue(pool, owner, TINY)
    second = await enqueue(pool, owner, {**TINY, "name": "second"})
    async with pool.acquire() as holder, pool.acquire() as other:
        async with holder.transaction():
            await holder.execute("SELECT id FROM jobs WHERE id = $1 FOR UPDATE", first)
            claimed = await asyncio.wait_for(jobs.claim(other, WorkerIdentity("w", "h", 1), "/jobs"), timeout=5)
        assert claimed is not None and claimed[0].id == second
        nothing_left = await jobs.claim(other, WorkerIdentity("w", "h", 1), "/jobs")
        assert nothing_left is not None and nothing_left[0].id == first


async def test_stopping_a_queued_job_cancels_it(pool: asyncpg.Pool, owner: int) -> None:
    job_id = await enqueue(pool, owner, TINY)
    async with pool.acquire() as conn:
        job, event = await jobs.request_stop(conn, job_id)
        assert job.status == "canceled" and event is not None and event.data["status"] == "canceled"
        assert await jobs.claim(conn, WorkerIdentity("w", "h", 1), "/jobs") is None
        again, no_event = await jobs.request_stop(conn, job_id)
    assert again.status == "canceled" and no_event is None


# ------------------------------------------------------------------------------------ job process
async def test_a_tiny_training_job_runs_to_completion_with_progress_on_the_bus(
    pool: asyncpg.Pool, bus: EventBus, owner: int, supervisor: JobSupervisor, tmp_path: Path
) -> None:
    job_id = 0

    async def submit() -> None:
        nonlocal job_id
        job_id = await enqueue(pool, owner, TINY)

    seen = await events_until(bus, f"user:{owner}:jobs", terminal, submit)
    assert statuses(seen) == ["initializing", "in_progress", "completed"]
    progress = [e for e in seen if e["type"] == "job.progress"]
    assert len(progress) == 1
    p = progress[0]
    assert p["job_id"] == job_id and p["iteration"] == 1 and p["episodes"] == 2
    assert len(p["episode_rewards"]) == len(p["episode_progress"]) == 2
    assert p["percent_complete"] == 100.0
    assert p["mean_reward"] > 0
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids), "event ids increase"

    job = await jobs.get(pool, job_id)
    assert job is not None and job.status == "completed" and not job.stopped_early and job.error is None
    assert job.progress["checkpoint"] == p["checkpoint"]
    assert job.result is not None and job.result["iterations"] == 1
    history = await jobs.events(pool, job_id, type_="job.progress")
    assert [e.data for e in history] == [{k: v for k, v in p.items() if k not in ("id", "type", "job_id")}]

    folder = tmp_path / "data" / "jobs" / str(job_id)
    assert (folder / "model_metadata.json").exists()
    assert (folder / "model.onnx").exists()
    assert (folder / "model" / f"{p['checkpoint']}.pt").exists()
    pointers = json.loads((folder / "model" / "deepracer_checkpoints.json").read_text())
    assert p["checkpoint"] in json.dumps(pointers["last_checkpoint"])

    # The finished job's folder is now a ready model in the store, and the job says which.
    assert job.model_id is not None and seen[-1]["model_id"] == job.model_id, job.result
    model = await model_repo.by_id(pool, job.model_id)
    assert model is not None and (model.status, model.source, model.owner_id) == ("ready", "training", owner)
    assert model.name == "tiny" and model.checkpoints["last"]["name"] == p["checkpoint"]
    assert "model.onnx" in {f.path for f in await model_repo.files(pool, model.id)}


async def test_a_second_job_of_the_same_name_registers_its_model_with_a_numeric_suffix(
    pool: asyncpg.Pool, bus: EventBus, owner: int, supervisor: JobSupervisor
) -> None:
    ids: list[int] = []
    for _ in range(2):

        async def submit() -> None:
            ids.append(await enqueue(pool, owner, TINY))

        seen = await events_until(bus, f"user:{owner}:jobs", terminal, submit)
        assert statuses(seen)[-1] == "completed"
    names = []
    for job_id in ids:
        job = await jobs.get(pool, job_id)
        assert job is not None and job.model_id is not None
        model = await model_repo.by_id(pool, job.model_id)
        assert model is not None
        names.append(model.name)
    assert names == ["tiny", "tiny-2"]


async def test_a_stopped_job_saves_a_final_checkpoint_and_completes_early(
    pool: asyncpg.Pool, bus: EventBus, owner: int, supervisor: JobSupervisor, tmp_path: Path
) -> None:
    job_id = 0
    stop_sent = False

    def first_progress_then_end(event: dict[str, Any]) -> bool:
        return event["type"] == "job.progress" or terminal(event)

    async def submit() -> None:
        nonlocal job_id
        job_id = await enqueue(pool, owner, LONG)

    seen = await events_until(bus, f"user:{owner}:jobs", first_progress_then_end, submit)
    assert seen[-1]["type"] == "job.progress"

    async def stop() -> None:
        nonlocal stop_sent
        async with pool.acquire() as conn:
            job, event = await jobs.request_stop(conn, job_id)
        assert job.status == "stopping" and event is not None
        stop_sent = True

    rest = await events_until(bus, f"job:{job_id}", terminal, stop)
    assert stop_sent
    assert statuses(rest)[-1] == "completed"
    job = await jobs.get(pool, job_id)
    assert job is not None and job.status == "completed" and job.stopped_early and job.stop_requested
    assert job.result is not None
    last = [e for e in [*seen, *rest] if e["type"] == "job.progress"][-1]
    assert job.result["last_checkpoint"] == last["checkpoint"]
    assert last["episodes"] < 10_000
    folder = tmp_path / "data" / "jobs" / str(job_id)
    assert (folder / "model" / f"{last['checkpoint']}.pt").exists()
    assert (folder / "model" / ".coach_checkpoint").read_text().strip() != ""
    assert (folder / "model.onnx").exists()
    assert job.model_id is not None, "a stopped job keeps its model, as DeepRacer does"
    model = await model_repo.by_id(pool, job.model_id)
    assert model is not None and model.status == "ready" and model.name == "long"
    assert model.checkpoints["last"]["name"] == last["checkpoint"]


async def test_a_killed_job_process_fails_its_job_with_the_reason(
    pool: asyncpg.Pool, bus: EventBus, owner: int, supervisor: JobSupervisor
) -> None:
    job_id = 0

    def running(event: dict[str, Any]) -> bool:
        return event["type"] == "job.status" and event["status"] in ("in_progress", *jobs.TERMINAL)

    async def submit() -> None:
        nonlocal job_id
        job_id = await enqueue(pool, owner, LONG)

    seen = await events_until(bus, f"user:{owner}:jobs", running, submit)
    assert statuses(seen)[-1] == "in_progress"
    job = await jobs.get(pool, job_id)
    assert job is not None and job.child_pid is not None
    # niced below the server so LIVE races keep their clock
    assert os.getpriority(os.PRIO_PROCESS, job.child_pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 10

    async def kill() -> None:
        assert job.child_pid is not None
        os.kill(job.child_pid, signal.SIGKILL)

    rest = await events_until(bus, f"job:{job_id}", terminal, kill)
    assert rest[-1]["status"] == "failed"
    assert "killed by SIGKILL" in rest[-1]["error"]
    stored = await jobs.get(pool, job_id)
    assert stored is not None and stored.status == "failed" and "SIGKILL" in (stored.error or "")
    assert supervisor.running == {}


async def test_a_job_with_a_failing_reward_function_fails_with_its_error(
    pool: asyncpg.Pool, bus: EventBus, owner: int, supervisor: JobSupervisor
) -> None:
    bad = "def reward_function(params):\n    return params['no_such_key']\n"
    job_id = 0

    async def submit() -> None:
        nonlocal job_id
        job_id = await enqueue(pool, owner, {**TINY, "reward_function": bad})

    seen = await events_until(bus, f"user:{owner}:jobs", terminal, submit)
    assert seen[-1]["status"] == "failed"
    assert "reward function failed" in seen[-1]["error"] and "line 2" in seen[-1]["error"]


# ------------------------------------------------------------------------------------ lost workers
async def test_a_stale_heartbeat_on_another_host_fails_the_job_and_a_fresh_one_does_not(
    pool: asyncpg.Pool, bus: EventBus, owner: int, tmp_path: Path
) -> None:
    stale, fresh = await enqueue(pool, owner, TINY), await enqueue(pool, owner, {**TINY, "name": "fresh"})
    async with pool.acquire() as conn:
        for _ in range(2):
            assert await jobs.claim(conn, WorkerIdentity("far:1:x", "far-away-host", 1), "/jobs") is not None
        await conn.execute("UPDATE jobs SET heartbeat_at = now() - interval '10 minutes' WHERE id = $1", stale)
    sup = JobSupervisor(pool, bus, tmp_path / "data", stale_after_s=60)
    async with bus.subscribe(f"job:{stale}") as sub:
        await sup.sweep()
        event = await anext(sub)
    assert isinstance(event, dict) and event["status"] == "failed"
    assert event["error"] == "worker lost: no heartbeat for over 60 s"
    still = await jobs.get(pool, fresh)
    assert still is not None and still.status == "initializing"


async def test_after_a_server_is_killed_its_job_process_exits_and_the_next_start_fails_the_job(
    pool: asyncpg.Pool, bus: EventBus, owner: int, pg_url: str, tmp_path: Path
) -> None:
    job_id = await enqueue(pool, owner, LONG)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(
        DATABASE_URL=pg_url,
        TRACKSIDE_DATA_DIR=str(tmp_path / "server"),
        TRACKSIDE_PORT=str(free_port()),
        TRACKSIDE_WORKERS="1",
        TRACKSIDE_LOG_FORMAT="text",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "race_server.cli", "serve", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:
        # No event crosses from the server process to this one: poll the database, bounded.
        async with asyncio.timeout(DEADLINE_S):
            while (job := await jobs.get(pool, job_id)) is None or job.status != "in_progress":
                assert server.returncode is None, log_path.read_text()
                assert job is None or job.status in ("queued", "initializing"), job
                await asyncio.sleep(0.1)
        assert job.worker_pid == server.pid and job.child_pid is not None
        server.kill()
        await server.wait()
        async with asyncio.timeout(30):
            await pid_exit(job.child_pid)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()

    restarted = JobSupervisor(pool, bus, tmp_path / "data")
    async with bus.subscribe(f"job:{job_id}") as sub:
        await restarted.start()
        try:
            event = await anext(sub)
        finally:
            await restarted.close()
    assert isinstance(event, dict) and event["status"] == "failed"
    assert event["error"] == "worker lost: its server process is gone"
    stored = await jobs.get(pool, job_id)
    assert stored is not None and stored.status == "failed" and stored.finished_at is not None
