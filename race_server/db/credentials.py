"""Which API tokens and browser sessions are still good, and for which role (open sockets' recheck)."""

from __future__ import annotations

import asyncpg


async def live_roles(
    conn: asyncpg.Connection | asyncpg.Pool, token_ids: list[int], session_ids: list[int]
) -> tuple[dict[int, str], dict[int, str]]:
    """{token_id: role} and {session_id: role} for those of the given ids that still authenticate."""
    tokens = await conn.fetch(
        """
        SELECT t.id, CASE t.kind WHEN 'user' THEN u.role ELSE t.kind END AS role
        FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
        WHERE t.id = ANY($1::bigint[]) AND t.revoked_at IS NULL AND (t.kind <> 'user' OR u.id IS NOT NULL)
        """,
        token_ids,
    )
    sessions = await conn.fetch(
        """
        SELECT s.id, u.role FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ANY($1::bigint[]) AND s.expires_at > now()
        """,
        session_ids,
    )
    return {row["id"]: row["role"] for row in tokens}, {row["id"]: row["role"] for row in sessions}
