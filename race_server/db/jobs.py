"""Jobs repository: the training/evaluation job queue and each job's event log.

Claiming uses ``SELECT … FOR UPDATE SKIP LOCKED``: one statement, no extra dependency, and it
works on the asyncpg pool the server already has (procrastinate and pgqueuer bring their own
connectors and worker loops, and neither is a dependency). Every state change writes a
``job_events`` row in the same transaction; its id is the event id the bus carries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

STATUSES = ("queued", "initializing", "in_progress", "stopping", "completed", "failed", "canceled")
ACTIVE = ("initializing", "in_progress", "stopping")
TERMINAL = ("completed", "failed", "canceled")
KINDS = ("training", "evaluation")

_COLUMNS = (
    "id, owner_id, kind, status, name, config, source_job_id, model_dir, model_id, worker_id, worker_host, "
    "worker_pid, child_pid, heartbeat_at, attempts, stop_requested, stopped_early, error, progress, result, "
    "created_at, started_at, finished_at"
)


@dataclass(frozen=True)
class JobRecord:
    id: int
    owner_id: int
    kind: str
    status: str
    name: str
    config: dict[str, Any]
    source_job_id: int | None
    model_dir: str | None
    model_id: int | None
    worker_id: str | None
    worker_host: str | None
    worker_pid: int | None
    child_pid: int | None
    heartbeat_at: datetime | None
    attempts: int
    stop_requested: bool
    stopped_early: bool
    error: str | None
    progress: dict[str, Any]
    result: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "kind": self.kind,
            "status": self.status,
            "name": self.name,
            "config": self.config,
            "source_job_id": self.source_job_id,
            "model_id": self.model_id,
            "attempts": self.attempts,
            "stop_requested": self.stop_requested,
            "stopped_early": self.stopped_early,
            "error": self.error,
            "progress": self.progress,
            "result": self.result,
            "created_at": when(self.created_at),
            "started_at": when(self.started_at),
            "finished_at": when(self.finished_at),
            "heartbeat_at": when(self.heartbeat_at),
        }


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: int
    owner_id: int
    type: str
    data: dict[str, Any]

    def as_event(self) -> dict[str, Any]:
        """The bus/websocket form: the log row's id, its type, the job, then the payload."""
        return {**self.data, "id": self.id, "type": self.type, "job_id": self.job_id}

    @property
    def channels(self) -> tuple[str, str]:
        return (f"job:{self.job_id}", f"user:{self.owner_id}:jobs")


@dataclass(frozen=True)
class WorkerIdentity:
    """One supervisor incarnation: ``id`` is unique per start; host and pid let a restarted server
    on the same machine tell that the previous owner of a job is gone."""

    id: str
    host: str
    pid: int


def _record(row: asyncpg.Record) -> JobRecord:
    values = dict(row)
    for key in ("config", "progress", "result"):
        if values[key] is not None:
            values[key] = json.loads(values[key])
    return JobRecord(**values)


async def _event(conn: asyncpg.Connection, job_id: int, owner_id: int, type_: str, data: dict[str, Any]) -> JobEvent:
    event_id = await conn.fetchval(
        "INSERT INTO job_events (job_id, type, data) VALUES ($1, $2, $3::jsonb) RETURNING id",
        job_id,
        type_,
        json.dumps(data),
    )
    return JobEvent(int(event_id), job_id, owner_id, type_, data)


def _status_data(row: asyncpg.Record | JobRecord) -> dict[str, Any]:
    get = row.__getitem__ if isinstance(row, asyncpg.Record) else row.__getattribute__
    return {"status": get("status"), "error": get("error"), "stopped_early": get("stopped_early")}


async def enqueue(
    conn: asyncpg.Connection,
    *,
    owner_id: int,
    kind: str,
    name: str,
    config: dict[str, Any],
    source_job_id: int | None = None,
) -> tuple[JobRecord, JobEvent]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    async with conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO jobs (owner_id, kind, name, config, source_job_id) VALUES ($1, $2, $3, $4::jsonb, $5) "
            f"RETURNING {_COLUMNS}",
            owner_id,
            kind,
            name,
            json.dumps(config),
            source_job_id,
        )
        assert row is not None
        event = await _event(conn, row["id"], owner_id, "job.status", _status_data(row))
    return _record(row), event


async def get(conn: Conn, job_id: int) -> JobRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM jobs WHERE id = $1", job_id)
    return None if row is None else _record(row)


async def list_jobs(conn: Conn, owner_id: int | None, *, limit: int = 100) -> list[JobRecord]:
    """Newest first; ``owner_id=None`` lists everyone's (organizers)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM jobs WHERE $1::bigint IS NULL OR owner_id = $1 ORDER BY id DESC LIMIT $2",
        owner_id,
        limit,
    )
    return [_record(r) for r in rows]


async def events(conn: Conn, job_id: int, *, after_id: int = 0, type_: str | None = None) -> list[JobEvent]:
    rows = await conn.fetch(
        "SELECT e.id, e.job_id, j.owner_id, e.type, e.data FROM job_events e JOIN jobs j ON j.id = e.job_id "
        "WHERE e.job_id = $1 AND e.id > $2 AND ($3::text IS NULL OR e.type = $3) ORDER BY e.id",
        job_id,
        after_id,
        type_,
    )
    return [JobEvent(r["id"], r["job_id"], r["owner_id"], r["type"], json.loads(r["data"])) for r in rows]


async def claim(conn: asyncpg.Connection, worker: WorkerIdentity, data_dir: str) -> tuple[JobRecord, JobEvent] | None:
    """The oldest queued job, now ``initializing`` and owned by ``worker``; None when the queue is empty.

    SKIP LOCKED makes concurrent claimers pass over a row another claimer holds instead of waiting
    for it, so each queued job goes to exactly one worker. ``data_dir`` is where its folder goes."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""
            UPDATE jobs SET status = 'initializing', worker_id = $1, worker_host = $2, worker_pid = $3,
                heartbeat_at = now(), started_at = now(), attempts = attempts + 1,
                model_dir = $4 || '/' || id::text
            WHERE id = (
                SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
            )
            RETURNING {_COLUMNS}
            """,
            worker.id,
            worker.host,
            worker.pid,
            data_dir.rstrip("/"),
        )
        if row is None:
            return None
        event = await _event(conn, row["id"], row["owner_id"], "job.status", _status_data(row))
    return _record(row), event


async def mark_running(conn: asyncpg.Connection, job_id: int, worker_id: str, child_pid: int) -> JobEvent | None:
    """initializing -> in_progress once the training process is up (a stop request keeps ``stopping``)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE jobs SET child_pid = $3, heartbeat_at = now(), "
            "status = CASE WHEN status = 'initializing' THEN 'in_progress' ELSE status END "
            "WHERE id = $1 AND worker_id = $2 AND status IN ('initializing', 'stopping') "
            "RETURNING owner_id, status, error, stopped_early",
            job_id,
            worker_id,
            child_pid,
        )
        if row is None or row["status"] != "in_progress":
            return None
        return await _event(conn, job_id, row["owner_id"], "job.status", _status_data(row))


async def record_progress(
    conn: asyncpg.Connection, job_id: int, worker_id: str, data: dict[str, Any]
) -> JobEvent | None:
    """Store one iteration's summary (the graph's history) and make it the job's latest progress."""
    async with conn.transaction():
        owner_id = await conn.fetchval(
            "UPDATE jobs SET progress = $3::jsonb, heartbeat_at = now() "
            "WHERE id = $1 AND worker_id = $2 AND status IN ('initializing', 'in_progress', 'stopping') "
            "RETURNING owner_id",
            job_id,
            worker_id,
            json.dumps(data),
        )
        if owner_id is None:
            return None
        return await _event(conn, job_id, owner_id, "job.progress", data)


async def heartbeat(conn: Conn, worker_id: str) -> dict[int, bool]:
    """Refresh every active job of this worker; returns job id -> stop requested."""
    rows = await conn.fetch(
        "UPDATE jobs SET heartbeat_at = now() "
        "WHERE worker_id = $1 AND status IN ('initializing', 'in_progress', 'stopping') "
        "RETURNING id, stop_requested",
        worker_id,
    )
    return {r["id"]: r["stop_requested"] for r in rows}


async def request_stop(conn: asyncpg.Connection, job_id: int) -> tuple[JobRecord, JobEvent | None]:
    """A queued job is canceled at once; a running one goes to ``stopping`` and its worker stops it
    after the current iteration. A finished job is left as it is (no event)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""
            UPDATE jobs SET stop_requested = true,
                status = CASE WHEN status = 'queued' THEN 'canceled' ELSE 'stopping' END,
                finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
                error = CASE WHEN status = 'queued' THEN 'canceled before it started' ELSE error END
            WHERE id = $1 AND status IN ('queued', 'initializing', 'in_progress')
            RETURNING {_COLUMNS}
            """,
            job_id,
        )
        if row is None:
            current = await get(conn, job_id)
            if current is None:
                raise LookupError(f"job {job_id} does not exist")
            return current, None
        event = await _event(conn, job_id, row["owner_id"], "job.status", _status_data(row))
    return _record(row), event


async def finish(
    conn: asyncpg.Connection,
    job_id: int,
    worker_id: str,
    status: str,
    *,
    error: str | None = None,
    stopped_early: bool = False,
    result: dict[str, Any] | None = None,
    model_id: int | None = None,
) -> JobEvent | None:
    """The worker's final word on its job; None when the job is no longer this worker's.
    ``model_id``: the model-store model a training job's folder was registered as."""
    if status not in TERMINAL:
        raise ValueError(f"finish status must be one of {', '.join(TERMINAL)}, got {status!r}")
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE jobs SET status = $3, error = $4, stopped_early = $5, result = $6::jsonb, finished_at = now(), "
            "model_id = coalesce($7, model_id) "
            "WHERE id = $1 AND worker_id = $2 AND status IN ('initializing', 'in_progress', 'stopping') "
            "RETURNING owner_id, status, error, stopped_early, model_id",
            job_id,
            worker_id,
            status,
            error,
            stopped_early,
            None if result is None else json.dumps(result),
            model_id,
        )
        if row is None:
            return None
        data = {**_status_data(row), "model_id": row["model_id"]}
        return await _event(conn, job_id, row["owner_id"], "job.status", data)


async def fail_lost(
    conn: asyncpg.Connection,
    me: WorkerIdentity,
    *,
    stale_after_s: float,
    process_alive: Callable[[int], bool],
) -> list[JobEvent]:
    """Fail active jobs whose worker is gone: on this host its process no longer exists (a server
    restart), on any host its heartbeat is older than ``stale_after_s``."""
    failed: list[JobEvent] = []
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, owner_id, worker_host, worker_pid, heartbeat_at < now() - make_interval(secs => $2) AS old "
            "FROM jobs WHERE status IN ('initializing', 'in_progress', 'stopping') AND worker_id IS DISTINCT FROM $1 "
            "FOR UPDATE SKIP LOCKED",
            me.id,
            stale_after_s,
        )
        for row in rows:
            gone_here = (
                row["worker_host"] == me.host and row["worker_pid"] is not None and not process_alive(row["worker_pid"])
            )
            if not (gone_here or row["old"]):
                continue
            why = "its server process is gone" if gone_here else f"no heartbeat for over {stale_after_s:g} s"
            error = f"worker lost: {why}"
            await conn.execute(
                "UPDATE jobs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1", row["id"], error
            )
            data = {"status": "failed", "error": error, "stopped_early": False}
            failed.append(await _event(conn, row["id"], row["owner_id"], "job.status", data))
    return failed


async def active_for(conn: Conn, worker_id: str) -> Sequence[int]:
    rows = await conn.fetch(
        "SELECT id FROM jobs WHERE worker_id = $1 AND status IN ('initializing', 'in_progress', 'stopping')", worker_id
    )
    return [r["id"] for r in rows]
