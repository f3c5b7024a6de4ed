"""Browser sessions repository (the cookie carries the secret; the table keeps its digest)."""

from __future__ import annotations

import asyncpg


async def create(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, token_hash: bytes, max_age_s: int) -> int:
    session_id = await conn.fetchval(
        "INSERT INTO sessions (user_id, token_hash, expires_at) "
        "VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id",
        user_id,
        token_hash,
        float(max_age_s),
    )
    return int(session_id)


async def lookup(conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT s.id AS session_id, u.id AS user_id, u.role, u.email, u.alias
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = $1 AND s.expires_at > now()
        """,
        token_hash,
    )


async def delete(conn: asyncpg.Connection | asyncpg.Pool, session_id: int) -> None:
    await conn.execute("DELETE FROM sessions WHERE id = $1", session_id)
