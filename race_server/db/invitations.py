"""Sign-up invitations repository (server-wide; race invitation links come with races)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def create(
    conn: asyncpg.Connection | asyncpg.Pool, *, code_hash: bytes, created_by: int, max_uses: int, ttl_s: int
) -> tuple[int, datetime]:
    row = await conn.fetchrow(
        "INSERT INTO invitations (code_hash, created_by, max_uses, expires_at) "
        "VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING id, expires_at",
        code_hash,
        created_by,
        max_uses,
        float(ttl_s),
    )
    assert row is not None
    return int(row["id"]), row["expires_at"]


async def consume(conn: asyncpg.Connection, code_hash: bytes) -> bool:
    """Use one seat of a live invitation; False when unknown, expired, revoked or used up."""
    result: str = await conn.execute(
        "UPDATE invitations SET uses = uses + 1 "
        "WHERE code_hash = $1 AND revoked_at IS NULL AND expires_at > now() AND uses < max_uses",
        code_hash,
    )
    return result.endswith(" 1")


async def usable(conn: asyncpg.Connection | asyncpg.Pool, code_hash: bytes) -> bool:
    """Whether ``consume`` would succeed now (checked before the costly password hash)."""
    found = await conn.fetchval(
        "SELECT 1 FROM invitations "
        "WHERE code_hash = $1 AND revoked_at IS NULL AND expires_at > now() AND uses < max_uses",
        code_hash,
    )
    return found is not None
