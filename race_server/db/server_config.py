"""Server-wide choices an organizer makes at run time (not deployment settings)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

SIGNUP_MODES = ("invitation", "open")


async def get(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> Any:
    raw = await conn.fetchval("SELECT value FROM server_config WHERE key = $1", key)
    return None if raw is None else json.loads(raw)


async def put(conn: asyncpg.Connection | asyncpg.Pool, key: str, value: Any) -> None:
    await conn.execute(
        "INSERT INTO server_config (key, value) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        key,
        json.dumps(value),
    )
