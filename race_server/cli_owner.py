"""Whose models the local CLI works on, so one person on one laptop needs no account first.

``--owner EMAIL`` names the owner (multi-user servers). Without it: the server's one organizer
when there is exactly one; on a data dir with no organizer yet, the *local owner*, an organizer
account made on first use that nobody can sign in as (its password hash is no valid hash);
with several organizers the CLI asks for ``--owner``. The server's demo accounts never count.
"""

from __future__ import annotations

import asyncpg

from race_server.cli_outcome import EXIT_USAGE, fail

LOCAL_OWNER_EMAIL = "local-owner@trackside.invalid"
DEMO_EMAIL_DOMAIN = "demo.trackside.invalid"
# argon2 never accepts this as a hash, so no password signs in as the local owner.
UNUSABLE_PASSWORD_HASH = "!local owner: no sign-in"


async def ensure_local_owner(conn: asyncpg.Connection) -> int:
    """The local owner's id, created when missing (safe when two CLI runs race to create it)."""
    await conn.execute(
        "INSERT INTO users (role, email, password_hash) VALUES ('organizer', $1, $2) "
        "ON CONFLICT ((lower(email))) DO NOTHING",
        LOCAL_OWNER_EMAIL,
        UNUSABLE_PASSWORD_HASH,
    )
    return int(await conn.fetchval("SELECT id FROM users WHERE lower(email) = lower($1)", LOCAL_OWNER_EMAIL))


_PEOPLE = "role = 'organizer' AND lower(email) <> lower($1) AND email NOT ILIKE $2"


async def organizer_accounts(conn: asyncpg.Connection | asyncpg.Pool, limit: int = 2) -> list[int]:
    """Organizers a person signs in as: neither the local owner nor the demo's accounts."""
    rows = await conn.fetch(
        f"SELECT id FROM users WHERE {_PEOPLE} ORDER BY id LIMIT $3", LOCAL_OWNER_EMAIL, f"%@{DEMO_EMAIL_DOMAIN}", limit
    )
    return [int(row["id"]) for row in rows]


async def resolve_owner(conn: asyncpg.Connection, email: str | None) -> int:
    if email is not None:
        found = await conn.fetchval("SELECT id FROM users WHERE lower(email) = lower($1)", email)
        if found is None:
            raise fail("UNKNOWN_OWNER", f"no user {email}", exit_code=EXIT_USAGE, field="owner")
        return int(found)
    organizers = await organizer_accounts(conn)
    if len(organizers) == 1:
        return organizers[0]
    if not organizers:
        return await ensure_local_owner(conn)
    raise fail(
        "OWNER_REQUIRED",
        "this server has several organizers: say whose model this is with --owner EMAIL",
        exit_code=EXIT_USAGE,
        field="owner",
    )
