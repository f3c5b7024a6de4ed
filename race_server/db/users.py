"""Users repository: organizers and racers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


class DuplicateUser(ValueError):
    pass


class AliasFixed(ValueError):
    pass


@dataclass(frozen=True)
class User:
    id: int
    role: str
    email: str
    alias: str | None
    password_hash: str
    created_at: datetime


def _user(row: asyncpg.Record | None) -> User | None:
    return None if row is None else User(**dict(row))


_COLUMNS = "id, role, email, alias, password_hash, created_at"


async def create(
    conn: asyncpg.Connection | asyncpg.Pool, *, role: str, email: str, password_hash: str, alias: str | None
) -> User:
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (role, email, alias, password_hash) VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            role,
            email,
            alias,
            password_hash,
        )
    except asyncpg.UniqueViolationError as error:
        what = "alias" if "alias" in (error.constraint_name or "") else "email"
        raise DuplicateUser(f"that {what} is already taken") from None
    user = _user(row)
    assert user is not None
    return user


async def by_email(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> User | None:
    return _user(await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email))


async def by_id(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> User | None:
    return _user(await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id))


async def set_alias(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, alias: str) -> User:
    try:
        row = await conn.fetchrow(f"UPDATE users SET alias = $2 WHERE id = $1 RETURNING {_COLUMNS}", user_id, alias)
    except asyncpg.UniqueViolationError:
        raise DuplicateUser("that alias is already taken") from None
    except asyncpg.CheckViolationError as error:
        raise AliasFixed(str(error.message if hasattr(error, "message") else error)) from None
    user = _user(row)
    if user is None:
        raise LookupError(f"no user {user_id}")
    return user


async def count_organizers(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    value = await conn.fetchval("SELECT count(*) FROM users WHERE role = 'organizer'")
    return int(value)


async def record_login_failure(conn: asyncpg.Connection | asyncpg.Pool, email: str, client_ip: str) -> None:
    await conn.execute("INSERT INTO login_failures (email, client_ip) VALUES ($1, $2)", email, client_ip)


async def recent_login_failures(
    conn: asyncpg.Connection | asyncpg.Pool, email: str, client_ip: str, window_s: int
) -> tuple[int, int]:
    """Failures in the window for this email, and from this client address."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE lower(email) = lower($1)) AS by_email,
               count(*) FILTER (WHERE client_ip = $2) AS by_ip
        FROM login_failures
        WHERE failed_at > now() - make_interval(secs => $3)
        """,
        email,
        client_ip,
        float(window_s),
    )
    assert row is not None
    return int(row["by_email"]), int(row["by_ip"])


async def clear_login_failures(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE lower(email) = lower($1)", email)
