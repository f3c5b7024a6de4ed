"""Races repository: races, members, submissions, runs and laps (the event log is race_events)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from race_server.races.config import RaceConfig, parse_race_config
from race_server.races.ranking import Lap

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def new_invite_code() -> str:
    return f"tsr_{secrets.token_urlsafe(18)}"


@dataclass(frozen=True)
class Race:
    id: int
    organizer_id: int
    format: str
    config: RaceConfig
    invite_code: str
    queue_state: dict[str, Any] | None
    last_event_id: int
    created_at: datetime

    def as_json(self, now: datetime, *, with_invite: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "organizer_id": self.organizer_id,
            "format": self.format,
            "status": self.config.status(now),
            "config": self.config.to_dict(),
            "description_links": self.config.description_links(),
            "last_event_id": self.last_event_id,
            "created_at": self.created_at.isoformat(),
        }
        if with_invite:
            data["invite_code"] = self.invite_code
        return data


_COLUMNS = "id, organizer_id, format, config, invite_code, queue_state, last_event_id, created_at"


def _race(row: asyncpg.Record | None) -> Race | None:
    if row is None:
        return None
    state = row["queue_state"]
    return Race(
        id=row["id"],
        organizer_id=row["organizer_id"],
        format=row["format"],
        config=parse_race_config(json.loads(row["config"])),
        invite_code=row["invite_code"],
        queue_state=None if state is None else json.loads(state),
        last_event_id=row["last_event_id"],
        created_at=row["created_at"],
    )


async def create(conn: Conn, organizer_id: int, config: RaceConfig) -> Race:
    row = await conn.fetchrow(
        f"INSERT INTO races (organizer_id, format, config, invite_code) VALUES ($1, $2, $3::jsonb, $4) "
        f"RETURNING {_COLUMNS}",
        organizer_id,
        config.format,
        json.dumps(config.to_dict()),
        new_invite_code(),
    )
    race = _race(row)
    assert race is not None
    return race


async def get(conn: Conn, race_id: int, *, for_update: bool = False) -> Race | None:
    lock = " FOR UPDATE" if for_update else ""
    return _race(await conn.fetchrow(f"SELECT {_COLUMNS} FROM races WHERE id = $1{lock}", race_id))


async def by_invite(conn: Conn, code: str) -> Race | None:
    return _race(await conn.fetchrow(f"SELECT {_COLUMNS} FROM races WHERE invite_code = $1", code))


async def list_for_organizer(conn: Conn, organizer_id: int) -> list[Race]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM races WHERE organizer_id = $1 ORDER BY id", organizer_id)
    return [r for r in map(_race, rows) if r is not None]


async def list_for_member(conn: Conn, user_id: int) -> list[Race]:
    rows = await conn.fetch(
        f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))} FROM races r "
        "JOIN race_members m ON m.race_id = r.id WHERE m.user_id = $1 AND m.removed_at IS NULL ORDER BY r.id",
        user_id,
    )
    return [r for r in map(_race, rows) if r is not None]


async def list_live(conn: Conn) -> list[Race]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM races WHERE format = 'live' ORDER BY id")
    return [r for r in map(_race, rows) if r is not None]


async def update_config(conn: Conn, race_id: int, config: RaceConfig) -> None:
    await conn.execute(
        "UPDATE races SET config = $2::jsonb, updated_at = now() WHERE id = $1", race_id, json.dumps(config.to_dict())
    )


async def save_queue_state(conn: Conn, race_id: int, state: dict[str, Any]) -> None:
    await conn.execute("UPDATE races SET queue_state = $2::jsonb WHERE id = $1", race_id, json.dumps(state))


async def delete(conn: Conn, race_id: int) -> bool:
    result: str = await conn.execute("DELETE FROM races WHERE id = $1", race_id)
    return result.endswith(" 1")


async def reset_invite(conn: Conn, race_id: int) -> str:
    code = new_invite_code()
    await conn.execute("UPDATE races SET invite_code = $2, updated_at = now() WHERE id = $1", race_id, code)
    return code


async def set_viewer_hash(conn: Conn, race_id: int, token_hash: bytes) -> None:
    await conn.execute("UPDATE races SET viewer_hash = $2 WHERE id = $1", race_id, token_hash)


async def viewer_matches(conn: Conn, race_id: int, token_hash: bytes) -> bool:
    found = await conn.fetchval("SELECT 1 FROM races WHERE id = $1 AND viewer_hash = $2", race_id, token_hash)
    return found is not None


# --- members -------------------------------------------------------------------------------------
async def add_member(conn: Conn, race_id: int, user_id: int) -> bool:
    """Join; False when the organizer removed this racer (a removal is not undone by the link)."""
    await conn.execute(
        "INSERT INTO race_members (race_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", race_id, user_id
    )
    removed = await conn.fetchval(
        "SELECT removed_at IS NOT NULL FROM race_members WHERE race_id = $1 AND user_id = $2", race_id, user_id
    )
    return not removed


async def remove_member(conn: Conn, race_id: int, user_id: int) -> bool:
    result: str = await conn.execute(
        "UPDATE race_members SET removed_at = now() WHERE race_id = $1 AND user_id = $2 AND removed_at IS NULL",
        race_id,
        user_id,
    )
    return result.endswith(" 1")


async def is_member(conn: Conn, race_id: int, user_id: int) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM race_members WHERE race_id = $1 AND user_id = $2 AND removed_at IS NULL", race_id, user_id
    )
    return found is not None


async def members(conn: Conn, race_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT u.id AS user_id, u.alias, u.email, m.joined_at, m.removed_at,
               (SELECT count(*) FROM race_submissions s WHERE s.race_id = m.race_id AND s.racer_id = u.id)
                   AS submissions
        FROM race_members m JOIN users u ON u.id = m.user_id
        WHERE m.race_id = $1 ORDER BY m.joined_at, u.id
        """,
        race_id,
    )
    return rows


async def names(conn: Conn, race_id: int) -> dict[int, str]:
    rows = await conn.fetch(
        "SELECT u.id, coalesce(u.alias, 'racer-' || u.id) AS name FROM users u "
        "WHERE u.id IN (SELECT user_id FROM race_members WHERE race_id = $1 "
        "UNION SELECT racer_id FROM race_runs WHERE race_id = $1)",
        race_id,
    )
    return {row["id"]: row["name"] for row in rows}


# --- submissions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubmissionRow:
    id: int
    race_id: int
    racer_id: int
    model_id: int | None
    driver: dict[str, Any]
    loadable: bool
    error: str | None
    status: str
    result: dict[str, Any] | None
    submitted_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "race_id": self.race_id,
            "racer_id": self.racer_id,
            "model_id": self.model_id,
            "driver": self.driver,
            "loadable": self.loadable,
            "error": self.error,
            "status": self.status,
            "result": self.result,
            "submitted_at": self.submitted_at.isoformat(),
        }


_SUB_COLUMNS = "id, race_id, racer_id, model_id, driver, loadable, error, status, result, submitted_at"


def _submission(row: asyncpg.Record | None) -> SubmissionRow | None:
    if row is None:
        return None
    values = dict(row)
    values["driver"] = json.loads(values["driver"])
    values["result"] = None if values["result"] is None else json.loads(values["result"])
    return SubmissionRow(**values)


async def add_submission(
    conn: Conn,
    *,
    race_id: int,
    racer_id: int,
    model_id: int | None,
    driver: dict[str, Any],
    loadable: bool,
    error: str | None,
    status: str,
) -> SubmissionRow:
    row = await conn.fetchrow(
        f"INSERT INTO race_submissions (race_id, racer_id, model_id, driver, loadable, error, status) "
        f"VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) RETURNING {_SUB_COLUMNS}",
        race_id,
        racer_id,
        model_id,
        json.dumps(driver),
        loadable,
        error,
        status,
    )
    sub = _submission(row)
    assert sub is not None
    return sub


async def submission(conn: Conn, submission_id: int) -> SubmissionRow | None:
    return _submission(await conn.fetchrow(f"SELECT {_SUB_COLUMNS} FROM race_submissions WHERE id = $1", submission_id))


async def submissions(conn: Conn, race_id: int, racer_id: int | None = None) -> list[SubmissionRow]:
    if racer_id is None:
        rows = await conn.fetch(f"SELECT {_SUB_COLUMNS} FROM race_submissions WHERE race_id = $1 ORDER BY id", race_id)
    else:
        rows = await conn.fetch(
            f"SELECT {_SUB_COLUMNS} FROM race_submissions WHERE race_id = $1 AND racer_id = $2 ORDER BY id",
            race_id,
            racer_id,
        )
    return [s for s in map(_submission, rows) if s is not None]


async def pending_evaluations(conn: Conn) -> list[SubmissionRow]:
    rows = await conn.fetch(
        f"SELECT {_SUB_COLUMNS} FROM race_submissions WHERE status IN ('queued', 'evaluating') ORDER BY id"
    )
    return [s for s in map(_submission, rows) if s is not None]


async def set_submission_status(
    conn: Conn, submission_id: int, status: str, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    await conn.execute(
        "UPDATE race_submissions SET status = $2, result = coalesce($3::jsonb, result), "
        "error = coalesce($4, error) WHERE id = $1",
        submission_id,
        status,
        None if result is None else json.dumps(result),
        error,
    )


# --- runs and laps -------------------------------------------------------------------------------
async def reserve_run_id(conn: Conn) -> int:
    value = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('race_runs', 'id'))")
    return int(value)


async def insert_run(
    conn: Conn, *, run_id: int, race_id: int, racer_id: int, submission_id: int | None, kind: str, status: str
) -> None:
    await conn.execute(
        "INSERT INTO race_runs (id, race_id, racer_id, submission_id, kind, status) VALUES ($1, $2, $3, $4, $5, $6)",
        run_id,
        race_id,
        racer_id,
        submission_id,
        kind,
        status,
    )


async def set_run_status(conn: Conn, run_id: int, status: str, reason: str | None = None) -> None:
    ended = status in ("completed", "failed", "interrupted", "aborted")
    await conn.execute(
        "UPDATE race_runs SET status = $2, end_reason = coalesce($3, end_reason), "
        "ended_at = CASE WHEN $4 THEN now() ELSE ended_at END WHERE id = $1",
        run_id,
        status,
        reason,
        ended,
    )


async def run(conn: Conn, run_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, race_id, racer_id, submission_id, kind, status, end_reason, created_at, ended_at "
        "FROM race_runs WHERE id = $1",
        run_id,
    )


async def runs(conn: Conn, race_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, race_id, racer_id, submission_id, kind, status, end_reason, created_at, ended_at "
        "FROM race_runs WHERE race_id = $1 ORDER BY id",
        race_id,
    )
    return rows


async def interrupt_open_runs(conn: Conn, race_id: int, reason: str) -> list[int]:
    rows = await conn.fetch(
        "UPDATE race_runs SET status = 'interrupted', end_reason = $2, ended_at = now() "
        "WHERE race_id = $1 AND kind = 'live' AND status IN ('countdown', 'running') RETURNING id",
        race_id,
        reason,
    )
    return [row["id"] for row in rows]


async def insert_lap(conn: Conn, race_id: int, event: dict[str, Any]) -> bool:
    """Store a timing ``lap`` event; False if that lap of that run was already stored."""
    result: str = await conn.execute(
        "INSERT INTO race_laps (race_id, run_id, racer_id, lap_no, time_ms, valid, reason, sectors_ms, off_track, "
        "collisions, resets) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        race_id,
        event["run_id"],
        event["racer_id"],
        event["lap"],
        event["time_ms"],
        event["valid"],
        event.get("reason"),
        list(event.get("sectors_ms", [])),
        event.get("off_track", 0),
        event.get("collisions", 0),
        event.get("resets", 0),
    )
    return result.endswith(" 1")


async def laps(conn: Conn, race_id: int, *, include_cleared: bool = False) -> list[Lap]:
    rows = await conn.fetch(
        "SELECT id, run_id, racer_id, lap_no, time_ms, valid, reason, sectors_ms, off_track, collisions, resets "
        "FROM race_laps WHERE race_id = $1 AND ($2 OR NOT cleared) ORDER BY id",
        race_id,
        include_cleared,
    )
    return [
        Lap(
            racer_id=row["racer_id"],
            run_id=row["run_id"],
            lap_no=row["lap_no"],
            time_ms=row["time_ms"],
            valid=row["valid"],
            order=float(row["id"]),
            sectors_ms=tuple(row["sectors_ms"]),
            off_track=row["off_track"],
            collisions=row["collisions"],
            resets=row["resets"],
            reason=row["reason"],
        )
        for row in rows
    ]


async def clear_laps(conn: Conn, race_id: int) -> None:
    await conn.execute("UPDATE race_laps SET cleared = true WHERE race_id = $1", race_id)
