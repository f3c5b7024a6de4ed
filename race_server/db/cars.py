"""Cars repository: physical (or simulated) cars that link to the server with a car token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


class DuplicateCar(ValueError):
    pass


@dataclass(frozen=True)
class Car:
    id: int
    owner_id: int
    name: str
    created_at: datetime


async def create(conn: asyncpg.Connection | asyncpg.Pool, owner_id: int, name: str) -> Car:
    try:
        row = await conn.fetchrow(
            "INSERT INTO cars (owner_id, name) VALUES ($1, $2) RETURNING id, owner_id, name, created_at",
            owner_id,
            name,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateCar(f"you already have a car named {name!r}") from None
    assert row is not None
    return Car(**dict(row))


async def list_for(conn: asyncpg.Connection | asyncpg.Pool, owner_id: int) -> list[Car]:
    rows = await conn.fetch("SELECT id, owner_id, name, created_at FROM cars WHERE owner_id = $1 ORDER BY id", owner_id)
    return [Car(**dict(row)) for row in rows]
