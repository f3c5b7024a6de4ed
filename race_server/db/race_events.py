"""The per-race event log: every stored race event with its increasing id (the truth clients replay)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg


async def append(conn: asyncpg.Connection, race_id: int, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each event the race's next ids and store it; call inside the transaction that also
    stores what the events describe. Returns the events with ``id``, ``event_id`` and ``race_id``."""
    if not events:
        return []
    # The row lock on the race serialises writers, so ids are gap-free and in commit order.
    last = await conn.fetchval(
        "UPDATE races SET last_event_id = last_event_id + $2 WHERE id = $1 RETURNING last_event_id",
        race_id,
        len(events),
    )
    if last is None:
        raise LookupError(f"no race {race_id}")
    first = int(last) - len(events) + 1
    stored = [
        {**event, "race_id": race_id, "event_id": first + index, "id": first + index}
        for index, event in enumerate(events)
    ]
    await conn.executemany(
        "INSERT INTO race_events (race_id, id, type, payload) VALUES ($1, $2, $3, $4::jsonb)",
        [(race_id, e["id"], e["type"], json.dumps(e)) for e in stored],
    )
    return stored


async def since(
    conn: asyncpg.Connection | asyncpg.Pool, race_id: int, after_id: int, *, limit: int = 10_000
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT payload FROM race_events WHERE race_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        race_id,
        after_id,
        limit,
    )
    return [json.loads(row["payload"]) for row in rows]


async def last_id(conn: asyncpg.Connection | asyncpg.Pool, race_id: int) -> int:
    value = await conn.fetchval("SELECT last_event_id FROM races WHERE id = $1", race_id)
    return int(value or 0)
