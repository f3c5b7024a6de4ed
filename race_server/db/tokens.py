"""API tokens repository: CLI tokens (act as a user), car tokens and viewer tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class TokenInfo:
    id: int
    kind: str
    name: str
    user_id: int | None
    car_id: int | None
    created_by: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_COLUMNS = "id, kind, name, user_id, car_id, created_by, created_at, last_used_at, revoked_at"


async def create(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    kind: str,
    name: str,
    token_hash: bytes,
    created_by: int,
    user_id: int | None = None,
    car_id: int | None = None,
) -> TokenInfo:
    row = await conn.fetchrow(
        f"INSERT INTO api_tokens (kind, name, token_hash, created_by, user_id, car_id) "
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
        kind,
        name,
        token_hash,
        created_by,
        user_id,
        car_id,
    )
    assert row is not None
    return TokenInfo(**dict(row))


async def lookup(conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes) -> asyncpg.Record | None:
    """The live token and whom it speaks for; touches last_used_at."""
    return await conn.fetchrow(
        """
        UPDATE api_tokens t SET last_used_at = now()
        FROM api_tokens t2 LEFT JOIN users u ON u.id = t2.user_id
        WHERE t.id = t2.id AND t.token_hash = $1 AND t.revoked_at IS NULL
        RETURNING t.id AS token_id, t.kind, t.user_id, t.car_id, t.created_by, u.role AS user_role, u.email, u.alias
        """,
        token_hash,
    )


async def list_created_by(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> list[TokenInfo]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM api_tokens WHERE created_by = $1 ORDER BY id", user_id)
    return [TokenInfo(**dict(row)) for row in rows]


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, token_id: int, *, by_user: int, any_owner: bool) -> bool:
    """Revoke a token the caller created (organizers may revoke any). False if none matched."""
    result: str = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND ($3 OR created_by = $2)",
        token_id,
        by_user,
        any_owner,
    )
    return result.endswith(" 1")
