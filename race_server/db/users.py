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


async def reserve_login_attempt(
    conn: asyncpg.Connection,
    *,
    email: str,
    client_ip: str,
    device: str | None,
    window_s: int,
    max_failures: int,
    max_per_ip: int,
) -> int | None:
    """Count this attempt as a failure before the password is checked; None when over the limit.

    Counting first, under advisory locks on the address and the email, makes the limit exact however
    many guesses arrive at once: each sees the ones before it. A correct password then takes back its
    own row (``forgive_login_attempt``) and nothing else. Attempts from a known device count against
    that device only; the others against the email and the client address.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('login-ip:' || $1, 0))", client_ip)
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('login-email:' || lower($1), 0))", email)
        if device is not None:
            failures = await conn.fetchval(
                "SELECT count(*) FROM login_failures "
                "WHERE device = $1 AND failed_at > now() - make_interval(secs => $2)",
                device,
                float(window_s),
            )
            over = int(failures) >= max_failures
        else:
            row = await conn.fetchrow(
                """
                SELECT count(*) FILTER (WHERE lower(email) = lower($1)) AS by_email,
                       count(*) FILTER (WHERE client_ip = $2) AS by_ip
                FROM login_failures
                WHERE device IS NULL AND failed_at > now() - make_interval(secs => $3)
                  AND (lower(email) = lower($1) OR client_ip = $2)
                """,
                email,
                client_ip,
                float(window_s),
            )
            assert row is not None
            over = int(row["by_email"]) >= max_failures or int(row["by_ip"]) >= max_per_ip
        if over:
            return None
        attempt_id = await conn.fetchval(
            "INSERT INTO login_failures (email, client_ip, device) VALUES ($1, $2, $3) RETURNING id",
            email,
            client_ip,
            device,
        )
        return int(attempt_id)


async def forgive_login_attempt(conn: asyncpg.Connection | asyncpg.Pool, attempt_id: int) -> None:
    await conn.execute("DELETE FROM login_failures WHERE id = $1", attempt_id)
